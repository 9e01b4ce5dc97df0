/** The artifact service as the rest of the action uses it: upload, download and listing, with their errors. */
export { startUpload, uploadFile, type StreamedUpload } from './upload.ts';
export type { UploadedArtifact } from './run-artifacts.ts';
export { artifactNamedAfterFile, downloadFile } from './download.ts';
export { listArtifactNames, transfersInSeries, type ArtifactLocation, type DownloadedArtifact } from './listing.ts';
export { ArtifactServiceFailed } from './errors.ts';
