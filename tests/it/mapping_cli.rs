//! `ferry mapping test`, `ferry mapping diff` and `check-config` on mapping
//! files, run as a user runs them: the golden samples in
//! `examples/mappings` (a Shopify order to an ERP sales order, an ERP stock
//! level to Shopify's inventory call, an ERP customer to a HubSpot contact;
//! money and 64-bit ids exact) pass, a changed expectation fails with a
//! path-level diff, `--bless` writes them, and two API versions of one
//! mapping are compared per sample.

use std::process::{Command, Output};

use crate::common::*;
use crate::mappings::{copy_examples, map_config};

fn ferry(args: &[&str], dir: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .current_dir(dir)
        .envs(secrets())
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The mappings test's config as `dir/ferry.toml`, with its secret files.
fn write_config(dir: &std::path::Path) {
    std::fs::create_dir_all(dir.join("secrets")).unwrap();
    for s in ["admin", "whsec", "erp_client"] {
        std::fs::write(dir.join("secrets").join(s), "x").unwrap();
    }
    let text = map_config("http://127.0.0.1:9", "", "");
    std::fs::write(dir.join("ferry.toml"), text).unwrap();
}

const GOLDEN: [&str; 3] = [
    "mappings/erp/v1/shopify_order",
    "mappings/shopify/2024-07/stock_level",
    "mappings/hubspot/v3/contact",
];

#[test]
fn the_example_mappings_pass_their_golden_samples() {
    let dir = tempfile::tempdir().unwrap();
    copy_examples(dir.path());
    for m in GOLDEN {
        let o = ferry(
            &[
                "mapping",
                "test",
                &format!("{m}.jq"),
                "--golden",
                &format!("{m}.golden"),
            ],
            dir.path(),
        );
        assert!(o.status.success(), "{m}: {}", text(&o));
        assert!(text(&o).contains("ok "), "{}", text(&o));
    }
}

#[test]
fn a_golden_mismatch_fails_with_a_diff_and_bless_rewrites_it() {
    let dir = tempfile::tempdir().unwrap();
    copy_examples(dir.path());
    let m = "mappings/erp/v1/shopify_order";
    let expected = dir.path().join(format!("{m}.golden/paid_order.out.json"));
    let good = std::fs::read_to_string(&expected).unwrap();
    std::fs::write(&expected, good.replace(r#""199.00""#, "199.0")).unwrap();
    let o = ferry(
        &[
            "mapping",
            "test",
            &format!("{m}.jq"),
            "--golden",
            &format!("{m}.golden"),
        ],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains(r#"$.lines[0].unit_price: 199.0 → "199.00" (number → string)"#),
        "{}",
        text(&o)
    );
    let o = ferry(
        &[
            "mapping",
            "test",
            &format!("{m}.jq"),
            "--golden",
            &format!("{m}.golden"),
            "--bless",
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(std::fs::read_to_string(&expected).unwrap(), good);
}

#[test]
fn mapping_test_prints_each_output_of_each_sample() {
    let dir = tempfile::tempdir().unwrap();
    copy_examples(dir.path());
    let g = "mappings/shopify/2024-07/stock_level.golden";
    let o = ferry(
        &[
            "mapping",
            "test",
            "mappings/shopify/2024-07/stock_level.jq",
            &format!("{g}/big_ids.in.json"),
            &format!("{g}/not_stocked.in.json"),
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", text(&o));
    let out = text(&o);
    assert!(
        out.contains(r#""inventory_item_id": 9007199254740993"#),
        "{out}"
    );
    assert!(
        out.contains("no output: the delivery would end skipped"),
        "{out}"
    );
}

#[test]
fn mapping_diff_shows_what_a_new_api_version_changes() {
    let dir = tempfile::tempdir().unwrap();
    copy_examples(dir.path());
    let sample = "mappings/erp/v1/shopify_order.golden/paid_order.in.json";
    let o = ferry(
        &[
            "mapping",
            "diff",
            "mappings/erp/v1/shopify_order.jq",
            "mappings/erp/v2/shopify_order.jq",
            sample,
        ],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = text(&o);
    for want in [
        r#"$.lines[0].unit_price: "199.00" → 199.00 (string → number)"#,
        r#"+ $.tags: ["wholesale","priority"]"#,
        r#"- $.note: "Leave at the back door""#,
    ] {
        assert!(out.contains(want), "{want} missing from:\n{out}");
    }
    // The same by the route's config, from v1 to v2.
    write_config(dir.path());
    let o = ferry(
        &[
            "mapping",
            "diff",
            "--config",
            "ferry.toml",
            "--route",
            "orders",
            "--from",
            "v1",
            "--to",
            "v2",
            sample,
        ],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("+ $.tags"), "{}", text(&o));
    // A mapping against itself: no difference, exit 0.
    let o = ferry(
        &[
            "mapping",
            "diff",
            "mappings/erp/v1/shopify_order.jq",
            "mappings/erp/v1/shopify_order.jq",
            sample,
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn check_config_reports_a_mapping_syntax_error_with_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    copy_examples(dir.path());
    write_config(dir.path());
    let o = ferry(&["check-config", "ferry.toml"], dir.path());
    assert!(o.status.success(), "{}", text(&o));
    std::fs::write(
        dir.path().join("mappings/shopify/2024-07/stock_level.jq"),
        "{\n  location_id: .shopify.location_id,\n  available: (.on_hand -\n}\n",
    )
    .unwrap();
    let o = ferry(&["check-config", "ferry.toml"], dir.path());
    assert_eq!(o.status.code(), Some(1));
    let out = text(&o);
    assert!(out.contains("routes.stock.transform"), "{out}");
    assert!(
        out.contains("mappings/shopify/2024-07/stock_level.jq:4:1"),
        "{out}"
    );
    // A version with no mapping file yet is reported too.
    std::fs::write(
        dir.path().join("ferry.toml"),
        map_config("http://127.0.0.1:9", "", "")
            .replace("api_version = \"2024-07\"", "api_version = \"2025-01\""),
    )
    .unwrap();
    let out = text(&ferry(&["check-config", "ferry.toml"], dir.path()));
    assert!(
        out.contains("mappings/shopify/2025-01/stock_level.jq"),
        "{out}"
    );
}
