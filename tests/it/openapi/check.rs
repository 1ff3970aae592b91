//! The check of a live answer against the OpenAPI document's schema, for
//! `openapi`'s tests: as much of JSON Schema as utoipa writes, strict about
//! property names so an answer that gains, loses or re-types a field fails.

use std::collections::BTreeMap;

use serde_json::Value;

/// A JSON Schema check of a value against the document's schema, as far as
/// utoipa's output goes: `$ref`, `allOf` (one object), `oneOf` / `anyOf`,
/// `type` (one or a list), `enum`, `properties` / `required` (and no
/// property the schema does not name), `items`.
pub struct Schemas<'a>(pub &'a Value);

impl<'a> Schemas<'a> {
    fn resolve(&self, mut s: &'a Value) -> &'a Value {
        while let Some(r) = s["$ref"].as_str() {
            let name = r.strip_prefix("#/components/schemas/").unwrap();
            s = &self.0["components"]["schemas"][name];
            assert!(!s.is_null(), "no schema {name}");
        }
        s
    }

    /// The properties and required names of an object schema, through
    /// `allOf`; `None` for a free-form one.
    fn shape(&self, s: &'a Value) -> Option<(BTreeMap<&'a str, &'a Value>, Vec<&'a str>)> {
        let s = self.resolve(s);
        let mut props = BTreeMap::new();
        let mut required = Vec::new();
        let mut any = false;
        if let Some(p) = s["properties"].as_object() {
            any = true;
            props.extend(p.iter().map(|(k, v)| (k.as_str(), v)));
        }
        if let Some(r) = s["required"].as_array() {
            required.extend(r.iter().filter_map(Value::as_str));
        }
        for member in s["allOf"].as_array().into_iter().flatten() {
            if let Some((p, r)) = self.shape(member) {
                any = true;
                props.extend(p);
                required.extend(r);
            }
        }
        any.then_some((props, required))
    }

    pub fn errors(&self, s: &'a Value, v: &Value, at: &str) -> Vec<String> {
        let mut errs = Vec::new();
        self.check(s, v, at, &mut errs);
        errs
    }

    fn check(&self, s: &'a Value, v: &Value, at: &str, errs: &mut Vec<String>) {
        let s = self.resolve(s);
        for key in ["oneOf", "anyOf"] {
            if let Some(branches) = s[key].as_array() {
                if !branches.iter().any(|b| self.errors(b, v, at).is_empty()) {
                    let why: Vec<String> = branches
                        .iter()
                        .flat_map(|b| self.errors(b, v, at))
                        .collect();
                    errs.push(format!("{at}: {v} matches no {key} branch: {why:?}"));
                }
                return;
            }
        }
        let types: Vec<&str> = match &s["type"] {
            Value::String(t) => vec![t],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let is = |t: &str| match t {
            "null" => v.is_null(),
            "boolean" => v.is_boolean(),
            "integer" => v.is_i64() || v.is_u64(),
            "number" => v.is_number(),
            "string" => v.is_string(),
            "array" => v.is_array(),
            "object" => v.is_object(),
            _ => true,
        };
        if !types.is_empty() && !types.iter().any(|t| is(t)) {
            errs.push(format!("{at}: {v} is not {types:?}"));
            return;
        }
        if let Some(e) = s["enum"].as_array()
            && !e.contains(v)
        {
            errs.push(format!("{at}: {v} is not one of {e:?}"));
        }
        if let (Some(obj), Some((props, required))) = (v.as_object(), self.shape(s)) {
            for r in required {
                if !obj.contains_key(r) {
                    errs.push(format!("{at}: `{r}` is required but missing"));
                }
            }
            for (k, field) in obj {
                match props.get(k.as_str()) {
                    Some(fs) => self.check(fs, field, &format!("{at}.{k}"), errs),
                    None => errs.push(format!("{at}: `{k}` is not in the schema")),
                }
            }
        }
        if let (Some(items), Some(list)) = (s.get("items"), v.as_array()) {
            for (i, item) in list.iter().enumerate() {
                self.check(items, item, &format!("{at}[{i}]"), errs);
            }
        }
    }
}
