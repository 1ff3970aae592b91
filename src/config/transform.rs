//! Resolving a route's `transform`: the passthrough, or a jq mapping file
//! chosen by the destination system's `api_version` (`{api_version}` in the
//! path), relative to the config file's folder, read and compiled now so a
//! syntax error is reported with its file, line and column before ferry
//! runs. With the system's `next_api_version`, the same path for that
//! version is the route's shadow mapping. Part of `resolve`.

use std::sync::Arc;

use super::raw::{RawRoute, RawSystem, RawTransform};
use super::resolve::Ctx;
use crate::transform::{Emits, Mapping, Transform};

const PLACEHOLDER: &str = "{api_version}";

/// The route's transform and its shadow (the next version's mapping).
pub(super) fn transform(
    cx: &mut Ctx<'_>,
    loc: &str,
    r: &RawRoute,
    system: Option<&RawSystem>,
) -> (Transform, Option<Arc<Mapping>>) {
    let loc = format!("{loc}.transform");
    let (file, emits) = match &r.transform {
        None => return (Transform::Passthrough, None),
        Some(RawTransform::File(f)) if f == "passthrough" => return (Transform::Passthrough, None),
        Some(RawTransform::File(f)) => (f.as_str(), Emits::Body),
        Some(RawTransform::Table(t)) => match t.emits.as_deref().map(Emits::parse) {
            None => (t.file.as_str(), Emits::Body),
            Some(Some(e)) => (t.file.as_str(), e),
            Some(None) => {
                cx.problem(format!("{loc}.emits"), "use \"body\" or \"request\"");
                return (Transform::Passthrough, None);
            }
        },
    };
    if emits == Emits::Request && r.destination.batch.is_some() {
        cx.problem(
            format!("{loc}.emits"),
            "a batched route sends one bulk request for many messages: its mapping emits bodies (\"body\"), not requests",
        );
    }
    let live = system.and_then(|s| s.api_version.as_deref());
    let Some(mapping) = load(cx, &loc, file, emits, live, "api_version") else {
        return (Transform::Passthrough, None);
    };
    let shadow = match system.and_then(|s| s.next_api_version.as_deref()) {
        Some(next) if file.contains(PLACEHOLDER) => {
            load(cx, &loc, file, emits, Some(next), "next_api_version")
        }
        _ => None,
    };
    (Transform::Mapping(mapping), shadow)
}

/// The mapping file for `version`, compiled; a problem when it cannot be.
fn load(
    cx: &mut Ctx<'_>,
    loc: &str,
    file: &str,
    emits: Emits,
    version: Option<&str>,
    key: &str,
) -> Option<Arc<Mapping>> {
    let written = file;
    let file = match (file.contains(PLACEHOLDER), version) {
        (false, _) => file.to_owned(),
        (true, Some(v)) => file.replace(PLACEHOLDER, v),
        (true, None) => {
            cx.problem(
                loc,
                format!("`{file}` uses {PLACEHOLDER} but the destination system sets no `{key}`"),
            );
            return None;
        }
    };
    let path = cx.base_dir.join(&file);
    let template = cx.base_dir.join(written);
    match Mapping::load(&path, emits, cx.jq_timeout) {
        Ok(m) => Some(Arc::new(m.with_template(template))),
        Err(e) if key == "next_api_version" => {
            cx.problem(loc, format!("{e} (the mapping for next_api_version)"));
            None
        }
        Err(e) => {
            cx.problem(loc, e.to_string());
            None
        }
    }
}
