package topology

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"gopkg.in/yaml.v3"
)

const schemaFile = "../schema/topology.schema.json"

// TestSchemaPublished keeps the published schema equal to the one the Go
// types give. NSROUTER_UPDATE_SCHEMA=1 rewrites it.
func TestSchemaPublished(t *testing.T) {
	got := Schema()
	if os.Getenv("NSROUTER_UPDATE_SCHEMA") == "1" {
		if err := os.WriteFile(schemaFile, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(schemaFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is out of date; run NSROUTER_UPDATE_SCHEMA=1 go test ./topology -run TestSchemaPublished", schemaFile)
	}
}

// TestExamplesFitSchema checks every example against the schema's field
// names, a small check that needs no schema library: each mapping key in
// the file must be a property the schema lists at that place.
func TestExamplesFitSchema(t *testing.T) {
	var schema map[string]any
	if err := json.Unmarshal(Schema(), &schema); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("../examples/*.yaml")
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var doc any
		if err := yaml.Unmarshal(data, &doc); err != nil {
			t.Fatal(err)
		}
		walkSchema(t, f, "", doc, schema)
	}
}

func walkSchema(t *testing.T, file, path string, v any, s map[string]any) {
	t.Helper()
	switch v := v.(type) {
	case map[string]any:
		props, _ := s["properties"].(map[string]any)
		extra, _ := s["additionalProperties"].(map[string]any)
		for k, child := range v {
			switch {
			case props != nil:
				ps, ok := props[k].(map[string]any)
				if !ok {
					t.Errorf("%s: %s.%s is not in the schema", file, path, k)
					continue
				}
				walkSchema(t, file, path+"."+k, child, ps)
			case extra != nil:
				walkSchema(t, file, path+"."+k, child, extra)
			}
		}
	case []any:
		items, _ := s["items"].(map[string]any)
		for _, child := range v {
			if items != nil {
				walkSchema(t, file, path+"[]", child, items)
			}
		}
	}
}
