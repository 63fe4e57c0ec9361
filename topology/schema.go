package topology

import (
	"encoding/json"
	"reflect"
	"strings"
)

// SchemaID is where the published schema lives in the repository.
const SchemaID = "https://github.com/nsrouter/nsrouter/schema/topology.schema.json"

// Schema returns a JSON Schema (draft 2020-12) for topology files,
// generated from the file structs so that it cannot drift from what the
// decoder accepts. Editors with YAML language support use it for
// completion and checks.
func Schema() []byte {
	s := schemaOf(reflect.TypeOf(File{}))
	s["$schema"] = "https://json-schema.org/draft/2020-12/schema"
	s["$id"] = SchemaID
	s["title"] = "nsrouter topology"
	s["required"] = []string{"name"}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		panic(err)
	}
	return append(b, '\n')
}

// scalarFields may be written as numbers or strings in YAML (ports,
// sysctl values).
var scalarFields = map[string]bool{"sport": true, "dport": true, "port": true, "sysctls": true}

func schemaOf(t reflect.Type) map[string]any {
	switch t {
	case stringType:
		return map[string]any{"type": "string"}
	case intType:
		return map[string]any{"type": "integer"}
	case boolType:
		return map[string]any{"type": "boolean"}
	}
	if t.Kind() == reflect.Slice && t.Name() != "" && strings.HasPrefix(t.Name(), "Map[") {
		return map[string]any{"type": "object", "additionalProperties": schemaOf(t.Elem().Field(2).Type)}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return schemaOf(t.Elem())
	case reflect.Slice:
		return map[string]any{"type": "array", "items": schemaOf(t.Elem())}
	case reflect.Struct:
		props := map[string]any{}
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "" || name == "-" {
				continue
			}
			p := schemaOf(f.Type)
			if scalarFields[name] {
				if p["type"] == "string" {
					p["type"] = []string{"string", "integer"}
				} else if ap, ok := p["additionalProperties"].(map[string]any); ok {
					ap["type"] = []string{"string", "integer", "boolean"}
				}
			}
			if doc := f.Tag.Get("doc"); doc != "" {
				p["description"] = doc
			}
			props[name] = p
		}
		return map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	}
	panic("topology: no schema for " + t.String())
}
