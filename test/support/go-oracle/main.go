// Command go-oracle prints what Go's encoding/json, which docker, containerd and the scanners read image documents
// with, decodes each document to: the differential oracle of test/unit/json-oracle.test.ts.
//
// Input: one document per line, base64. Output: one JSON line per document, for each target the error Go returned (or
// null) and the value it decoded, marshalled back with the field names below.
//
// The targets copy the field tags of image-spec v1.1.1 (specs-go/v1: Descriptor, Platform, Manifest, Index, Image,
// RootFS) and of docker's manifest.json item (moby image/tarexport), so that only the standard library is needed.
package main

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"os"
)

type platform struct {
	Architecture string   `json:"architecture"`
	OS           string   `json:"os"`
	OSVersion    string   `json:"os.version,omitempty"`
	OSFeatures   []string `json:"os.features,omitempty"`
	Variant      string   `json:"variant,omitempty"`
}

type descriptor struct {
	MediaType    string            `json:"mediaType"`
	Digest       string            `json:"digest"`
	Size         int64             `json:"size"`
	URLs         []string          `json:"urls,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	Platform     *platform         `json:"platform,omitempty"`
	ArtifactType string            `json:"artifactType,omitempty"`
}

type manifest struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType,omitempty"`
	ArtifactType  string            `json:"artifactType,omitempty"`
	Config        descriptor        `json:"config"`
	Layers        []descriptor      `json:"layers"`
	Subject       *descriptor       `json:"subject,omitempty"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

type index struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType,omitempty"`
	ArtifactType  string            `json:"artifactType,omitempty"`
	Manifests     []descriptor      `json:"manifests"`
	Subject       *descriptor       `json:"subject,omitempty"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

type rootfs struct {
	Type    string   `json:"type"`
	DiffIDs []string `json:"diff_ids"`
}

type image struct {
	Created string `json:"created,omitempty"`
	platform
	RootFS rootfs `json:"rootfs"`
}

type manifestItem struct {
	Config   string
	RepoTags []string
	Layers   []string
}

type result struct {
	Err   *string     `json:"err"`
	Value interface{} `json:"value"`
}

func decode(data []byte, value interface{}) result {
	if err := json.Unmarshal(data, value); err != nil {
		text := err.Error()
		return result{Err: &text}
	}
	return result{Value: value}
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 64<<20), 64<<20)
	out := json.NewEncoder(os.Stdout)
	for in.Scan() {
		data, err := base64.StdEncoding.DecodeString(in.Text())
		if err != nil {
			os.Exit(2)
		}
		line := map[string]result{
			"manifest":     decode(data, new(manifest)),
			"index":        decode(data, new(index)),
			"image":        decode(data, new(image)),
			"manifestJson": decode(data, new([]manifestItem)),
		}
		if err := out.Encode(line); err != nil {
			os.Exit(3)
		}
	}
}
