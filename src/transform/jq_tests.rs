//! Unit tests of jq programs: keys, variables, the environment (what is
//! removed, `$now`), and the limits (deadline, outputs, depth, recursion).

use super::*;

fn jq(code: &str) -> Arc<Jq> {
    Arc::new(Jq::compile(code).unwrap())
}

fn key(code: &str, json: &[u8]) -> Result<String, JqError> {
    jq(code).key_blocking(json, 0)
}

fn run(j: &Arc<Jq>, input: serde_json::Value) -> Answer {
    j.run_blocking(Input::Value(input), Vec::new(), 0)
}

fn compile_error(code: &str) -> String {
    match Jq::compile(code) {
        Err(JqError::Compile { why, .. }) => why,
        other => panic!("`{code}` compiled: {other:?}"),
    }
}

fn overrun(answer: Answer) -> String {
    match answer {
        Err(JqError::Overrun { why, .. }) => why,
        other => panic!("not an overrun: {other:?}"),
    }
}

#[test]
fn keys_are_strings_or_json_text() {
    assert_eq!(
        key(".order.id", br#"{"order":{"id":"A-1"}}"#).unwrap(),
        "A-1"
    );
    assert_eq!(key(".order.id", br#"{"order":{"id":42}}"#).unwrap(), "42");
    let sku = r#".sku + "@" + .warehouse"#;
    assert_eq!(
        key(sku, br#"{"sku":"X","warehouse":"W1"}"#).unwrap(),
        "X@W1"
    );
}

#[test]
fn a_key_must_be_one_value() {
    assert!(matches!(key(".id", b"{}"), Err(JqError::Run { .. })));
    assert!(matches!(key(".id", b"not json"), Err(JqError::Input(_))));
    assert!(matches!(
        key(".ids[]", br#"{"ids":[1,2]}"#),
        Err(JqError::Run { .. })
    ));
}

#[test]
fn bad_programs_are_refused_at_compile_time() {
    assert!(matches!(Jq::compile(".a |"), Err(JqError::Compile { .. })));
    assert!(matches!(
        Jq::compile("nosuchfn(1)"),
        Err(JqError::Compile { .. })
    ));
}

#[test]
fn variables_are_bound_by_the_caller() {
    let j = Arc::new(
        Jq::compile_with("[range(length) as $i | .[$i] + {k: $keys[$i]}]", &["$keys"]).unwrap(),
    );
    let out = j
        .run_blocking(
            Input::Value(serde_json::json!([{"a": 1}, {"a": 2}])),
            vec![serde_json::json!(["x", "y"])],
            0,
        )
        .unwrap();
    assert_eq!(
        values(&out),
        vec![serde_json::json!([{"a": 1, "k": "x"}, {"a": 2, "k": "y"}])]
    );
    assert!(matches!(Jq::compile("$keys"), Err(JqError::Compile { .. })));
}

#[test]
fn programs_build_documents() {
    let out = run(
        &jq("{inputs: map(.)}"),
        serde_json::json!([{"a": 1}, {"a": 2.5}]),
    )
    .unwrap();
    assert_eq!(
        values(&out),
        vec![serde_json::json!({"inputs": [{"a": 1}, {"a": 2.5}]})]
    );
}

#[test]
fn what_reaches_outside_the_program_does_not_compile() {
    for (code, name) in [
        ("halt", "halt"),
        ("halt_error", "halt_error"),
        ("\"x\" | halt_error(1)", "halt_error"),
        ("env.HOME", "env"),
        ("$ENV.PATH", "$ENV"),
        ("input", "input"),
        ("[inputs]", "inputs"),
        ("input_filename", "input_filename"),
        ("now", "now"),
        ("now | localtime", "now"),
        ("0 | localtime", "localtime"),
        ("0 | strflocaltime(\"%H\")", "strflocaltime"),
        (". | debug", "debug"),
        ("debug(\"x\")", "debug"),
        ("stderr", "stderr"),
        ("stderr_empty", "stderr_empty"),
    ] {
        let why = compile_error(code);
        assert!(
            why.contains(&format!("`{name}` is not available")),
            "`{code}`: {why}"
        );
    }
    assert!(compile_error("now").contains("$now"));
    // Fields and strings of those names are the program's own.
    assert_eq!(
        key(r#".env + "-halt-now""#, br#"{"env":"prod"}"#).unwrap(),
        "prod-halt-now"
    );
    // And object keys, in a program that fails for another reason.
    assert!(compile_error("{inputs: ., at: now}").contains("`now` is not"));
    // So are definitions: they do not reach anything.
    assert_eq!(key("def now: 7; now", b"null").unwrap(), "7");
}

#[test]
fn the_time_is_now_from_the_caller() {
    let j = jq("$now");
    let out = j.run_blocking(
        Input::Bytes(b"null".to_vec()),
        Vec::new(),
        1_700_000_000_500,
    );
    assert_eq!(
        values(&out.unwrap()),
        vec![serde_json::json!(1_700_000_000.5)]
    );
    let day = jq("$now | floor | todate");
    assert_eq!(
        day.key_blocking(b"null", 86_400_000).unwrap(),
        "1970-01-02T00:00:00Z"
    );
    // The rest of the time functions are pure and stay.
    assert_eq!(
        key(r#""2024-07-01T00:00:00Z" | fromdate"#, b"null").unwrap(),
        "1719792000"
    );
}

#[test]
fn a_program_past_its_deadline_is_stopped_and_the_pool_goes_on() {
    for code in ["last(range(infinite))", "def f: f; f", "last(repeat(1))"] {
        let j = Arc::new(
            Jq::compile(code)
                .unwrap()
                .with_timeout(Duration::from_millis(200)),
        );
        let why = overrun(j.run_blocking(Input::Bytes(b"0".to_vec()), Vec::new(), 0));
        assert!(why.contains("ran longer than 200ms"), "`{code}`: {why}");
        assert_eq!(key(".a", br#"{"a":"after"}"#).unwrap(), "after", "`{code}`");
    }
}

#[test]
fn outputs_are_capped() {
    // A deadline far enough that only the cap can stop them, even behind
    // other tests' programs on the shared pool.
    let patient = |code: &str| {
        Arc::new(
            Jq::compile(code)
                .unwrap()
                .with_timeout(Duration::from_secs(60)),
        )
    };
    let why = overrun(run(&patient("range(1e9)"), serde_json::json!(null)));
    assert!(why.contains("more than 10000 values"), "{why}");
    let big = patient(r#"range(100) | "x" * 1000000"#);
    let why = overrun(run(&big, serde_json::json!(null)));
    assert!(why.contains("larger than"), "{why}");
}

#[test]
fn deep_input_is_refused_before_jaq_reads_it() {
    // The issue's attack: about 14 KB nested 7,000 levels deep.
    let body = format!("{}1{}", "[".repeat(7000), "]".repeat(7000));
    assert!(matches!(
        key(".[0]", body.as_bytes()),
        Err(JqError::Input(why)) if why.contains("deeper than 256")
    ));
    let inner = serde_json::to_string(&body).unwrap();
    let why = key("fromjson", inner.as_bytes()).unwrap_err().to_string();
    assert!(why.contains("deeper than 256"), "{why}");
    // At the limit, reading, walking and printing it all fit the stack.
    let d = MAX_INPUT_DEPTH;
    let limit = format!("{}1{}", "[".repeat(d), "]".repeat(d));
    let walk = jq("[.. | length?] | length");
    assert_eq!(
        walk.key_blocking(limit.as_bytes(), 0).unwrap(),
        (d + 1).to_string()
    );
    let text = jq("tojson | fromjson | [paths] | length");
    assert_eq!(
        text.key_blocking(limit.as_bytes(), 0).unwrap(),
        d.to_string()
    );
}

#[test]
fn unending_recursion_is_stopped_by_the_stack_guard() {
    let why = overrun(run(&jq("def f: f + 1; f"), serde_json::json!(0)));
    assert!(why.contains("recursed too deeply"), "{why}");
    assert_eq!(key(".a", br#"{"a":"alive"}"#).unwrap(), "alive");
    // A deep but finite recursion has room: 800 levels even in a debug
    // build (about 1,000 to 2,000 fit; a release build takes over 8,000).
    let deep = jq("def f: if . < 800 then (. + 1 | f) + 0 else . end; f");
    assert_eq!(deep.key_blocking(b"0", 0).unwrap(), "800");
}

fn values(out: &[JsonText]) -> Vec<serde_json::Value> {
    out.iter().map(JsonText::value).collect()
}

fn texts(code: &str, input: &[u8]) -> Vec<String> {
    Arc::new(jq(code))
        .run_blocking(Input::Bytes(input.to_vec()), Vec::new(), 0)
        .unwrap()
        .into_iter()
        .map(JsonText::into_string)
        .collect()
}

#[test]
fn numbers_and_key_order_pass_through_as_written() {
    let input = br#"{"z": 1, "price": 12.50, "id": 9007199254740993, "big": 123456789012345678901234567890, "a": 1e2}"#;
    assert_eq!(
        texts(".", input),
        [
            r#"{"z":1,"price":12.50,"id":9007199254740993,"big":123456789012345678901234567890,"a":1e2}"#
        ]
    );
    assert_eq!(
        texts("{id, price, total: (.z + 1)}", input),
        [r#"{"id":9007199254740993,"price":12.50,"total":2}"#]
    );
}

#[test]
fn outputs_that_are_not_json_are_errors() {
    for code in ["nan", "infinite", "{(1): 2}", "\"YWJj\" | tobytes"] {
        let out = Arc::new(jq(code)).run_blocking(Input::Bytes(b"null".to_vec()), Vec::new(), 0);
        match out {
            Err(JqError::Run { why, .. }) => assert!(why.contains("not JSON"), "{code}: {why}"),
            other => panic!("{code}: {other:?}"),
        }
    }
}
