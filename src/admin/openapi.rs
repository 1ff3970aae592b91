//! The admin API's OpenAPI 3.1 document (DESIGN: "`/admin/api/v1/...`
//! JSON ..., documented by an OpenAPI file; errors as RFC 9457
//! `application/problem+json`"). The operations come from the routes
//! themselves (`admin::api`, each handler's `#[utoipa::path]`); this module
//! adds what they share: the bearer-token security scheme, the answers every
//! operation may give (401, 403, 500, as one `Problem` schema), and renders
//! the document as pretty-printed JSON with sorted keys, so the copy
//! committed in `docs/openapi.json` changes only when the API does. Served,
//! unauthenticated, at [`PATH`].

use utoipa::OpenApi;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Content, Ref, RefOr, ResponseBuilder};

use crate::problem::Problem;

/// Where the document is served.
pub const PATH: &str = "/admin/api/openapi.json";

/// The security scheme's name in the document.
const BEARER: &str = "bearer";

/// The media type of every error answer.
pub const PROBLEM_JSON: &str = "application/problem+json";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "ferry admin API",
        description = "The operators' API of ferry: messages and their attempts, retry, \
            edit-and-replay and discard (one, or by filter with a dry-run count), failures \
            grouped by cause, routes, systems and their circuit breakers, the configuration, \
            credentials' metadata and the audit log. Every request sends \
            `Authorization: Bearer <token>` (the admin token, or an API token from \
            `ferry tokens add`); a viewer reads, acting takes an operator. Every error is \
            an RFC 9457 problem (`application/problem+json`) whose `type` is \
            `urn:ferry:problem:<slug>`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    components(schemas(Problem)),
    tags(
        (name = "messages", description = "Messages, their attempts, and operators' actions on them"),
        (name = "failures", description = "Dead messages grouped by cause"),
        (name = "routes", description = "Routes: counts, shadow comparisons, ordering keys"),
        (name = "systems", description = "Destinations: queues, circuit breakers, holds"),
        (name = "config", description = "The running configuration and its reloads"),
        (name = "credentials", description = "Credentials' metadata, never their values"),
        (name = "audit", description = "Who did what, when"),
        (name = "access", description = "Console users and API tokens (admin tokens only)"),
    )
)]
struct ApiDoc;

/// The document with the routes' operations in `routes`, finished: every
/// operation takes the bearer token and may answer 401, 403 and 500.
pub fn finish(routes: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    utoipa::openapi::OpenApi::merge(&mut doc, routes);
    let components = doc.components.get_or_insert_with(Default::default);
    components.security_schemes.insert(
        BEARER.to_owned(),
        SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
    );
    for item in doc.paths.paths.values_mut() {
        let ops = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.options,
            &mut item.head,
            &mut item.patch,
            &mut item.trace,
        ];
        for op in ops.into_iter().flatten() {
            common(op);
        }
    }
    doc
}

/// What every admin operation shares.
fn common(op: &mut Operation) {
    op.security = Some(vec![SecurityRequirement::new::<_, _, &str>(BEARER, [])]);
    let shared = [
        ("401", "No token, or one ferry does not know"),
        (
            "403",
            "A viewer's token on an action, or the admin API is disabled",
        ),
        ("500", "The store failed"),
    ];
    for (status, description) in shared {
        op.responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| problem(description));
    }
}

/// An error answer: a `Problem` as `application/problem+json`.
pub fn problem(description: &str) -> RefOr<utoipa::openapi::Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                PROBLEM_JSON,
                Content::new(Some(Ref::from_schema_name("Problem"))),
            )
            .build(),
    )
}

/// The finished document as served and committed: pretty-printed JSON,
/// keys sorted (explicitly: with serde_json's `preserve_order`, which a
/// dependency may turn on, a `Value` keeps insertion order), a final newline.
pub fn render(routes: utoipa::openapi::OpenApi) -> String {
    let doc = finish(routes);
    let mut value = serde_json::to_value(&doc).unwrap_or_default();
    value.sort_all_objects();
    let mut text = serde_json::to_string_pretty(&value).unwrap_or_default();
    text.push('\n');
    text
}
