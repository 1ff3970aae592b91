//! `ferry mapping test` and `ferry mapping diff`: a mapping file run on
//! samples outside the server, on the same jq pool and checks as delivery
//! (`transform::Mapping`). `test` prints each output, or with `--golden DIR`
//! compares every `DIR/NAME.in.json` with `DIR/NAME.out.json` (exit 1 and
//! a path-level diff on mismatch; `--bless` writes them); `diff` shows, per
//! sample, what changes between two mappings (two files, or one route's
//! mapping at two API versions).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};

use ferry::config::Config;
use ferry::transform::jq::JsonText;
use ferry::transform::{Emits, Mapping, diff};

#[derive(Subcommand)]
pub enum MappingCommand {
    /// Run a mapping on samples and print each output, or check it against golden files.
    Test(TestArgs),
    /// Show, per sample, a path-level diff of two mappings' outputs.
    Diff(DiffArgs),
}

#[derive(Args)]
pub struct TestArgs {
    /// The mapping file (jq).
    file: PathBuf,
    /// Input samples (JSON files).
    samples: Vec<PathBuf>,
    /// A folder of NAME.in.json inputs and NAME.out.json expected outputs.
    #[arg(long)]
    golden: Option<PathBuf>,
    /// With --golden: write each NAME.out.json from the mapping's output.
    #[arg(long, requires = "golden")]
    bless: bool,
    /// What the mapping emits: body, or request (checked like a delivery).
    #[arg(long, default_value = "body")]
    emits: String,
    /// How long one run may take.
    #[arg(long, default_value = "5s")]
    timeout: String,
}

#[derive(Args)]
pub struct DiffArgs {
    /// Two mapping files then the samples; or, with --config, only samples.
    args: Vec<PathBuf>,
    /// Take the mapping of --route in this config, at --from and --to.
    #[arg(long, short)]
    config: Option<PathBuf>,
    #[arg(long, requires = "config")]
    route: Option<String>,
    /// The API version to compare from (default: the system's api_version).
    #[arg(long, requires = "config")]
    from: Option<String>,
    /// The API version to compare to (default: the system's next_api_version).
    #[arg(long, requires = "config")]
    to: Option<String>,
}

pub fn run(command: MappingCommand) -> anyhow::Result<i32> {
    match command {
        MappingCommand::Test(args) => test(args),
        MappingCommand::Diff(args) => diff_cmd(args),
    }
}

fn load(file: &Path, emits: Emits, timeout: Duration) -> anyhow::Result<Mapping> {
    Ok(Mapping::load(file, emits, timeout)?)
}

fn read(sample: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(sample).with_context(|| format!("cannot read {}", sample.display()))
}

/// The mapping's outputs on `input`, as JSON text.
fn outputs(m: &Mapping, input: &[u8], sample: &Path) -> anyhow::Result<Vec<JsonText>> {
    m.outputs_blocking(input, ferry::clock::Clock::System.now_ms())
        .map_err(|e| anyhow::anyhow!("{}: {}", sample.display(), e))
}

fn test(args: TestArgs) -> anyhow::Result<i32> {
    let Some(emits) = Emits::parse(&args.emits) else {
        bail!("--emits {}: use body or request", args.emits);
    };
    let timeout = ferry::config::units::parse_duration(&args.timeout)
        .map_err(|e| anyhow::anyhow!("--timeout {}: {e}", args.timeout))?;
    let m = load(&args.file, emits, timeout)?;
    if let Some(dir) = &args.golden {
        return golden(&m, dir, args.bless);
    }
    if args.samples.is_empty() {
        bail!("give one or more samples (JSON files), or --golden DIR");
    }
    for sample in &args.samples {
        if args.samples.len() > 1 {
            println!("# {}", sample.display());
        }
        let input = read(sample)?;
        if emits == Emits::Request {
            // Checked as a delivery checks it: one request object.
            m.apply_blocking(&input, ferry::clock::Clock::System.now_ms())
                .map_err(|e| anyhow::anyhow!("{}: {e}", sample.display()))?;
        }
        let out = outputs(&m, &input, sample)?;
        if out.is_empty() {
            println!("(no output: the delivery would end skipped)");
        }
        for o in out {
            println!("{}", diff::pretty(o.as_str()).map_err(anyhow::Error::msg)?);
        }
    }
    Ok(0)
}

/// Every `NAME.in.json` of `dir` against its `NAME.out.json` (one JSON
/// document per output; empty for none).
fn golden(m: &Mapping, dir: &Path, bless: bool) -> anyhow::Result<i32> {
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".in.json"))
        .collect();
    inputs.sort();
    if inputs.is_empty() {
        bail!("{} holds no NAME.in.json samples", dir.display());
    }
    let mut failed = 0;
    for input in &inputs {
        let name = input
            .to_string_lossy()
            .trim_end_matches(".in.json")
            .to_owned();
        let expected_file = PathBuf::from(format!("{name}.out.json"));
        let got = outputs(m, &read(input)?, input)?;
        if bless {
            let mut text = String::new();
            for o in &got {
                text.push_str(&diff::pretty(o.as_str()).map_err(anyhow::Error::msg)?);
                text.push('\n');
            }
            std::fs::write(&expected_file, text)
                .with_context(|| format!("cannot write {}", expected_file.display()))?;
            println!("blessed {}", expected_file.display());
            continue;
        }
        let expected = std::fs::read_to_string(&expected_file).with_context(|| {
            format!(
                "cannot read {} (write it with --bless)",
                expected_file.display()
            )
        })?;
        let mismatches = compare(&expected, &got)
            .map_err(|e| anyhow::anyhow!("{}: {e}", expected_file.display()))?;
        if mismatches.is_empty() {
            println!("ok {}", input.display());
        } else {
            failed += 1;
            println!(
                "FAILED {} (expected {}):",
                input.display(),
                expected_file.display()
            );
            for line in mismatches {
                println!("  {line}");
            }
        }
    }
    if failed > 0 {
        println!("{failed} of {} golden sample(s) differ", inputs.len());
        return Ok(1);
    }
    Ok(0)
}

/// How the outputs differ from the expected documents; empty when equal.
/// Documents are equal when their compact text is (numbers as written,
/// keys in order).
fn compare(expected: &str, got: &[JsonText]) -> Result<Vec<String>, String> {
    let docs: Vec<String> = jaq_docs(expected)?;
    let mut out = Vec::new();
    if docs.len() != got.len() {
        out.push(format!(
            "{} output(s) expected, {} given",
            docs.len(),
            got.len()
        ));
    }
    for (i, (want, have)) in docs.iter().zip(got).enumerate() {
        let have = diff::compact(have.as_str())?;
        if *want == have {
            continue;
        }
        let changes = diff::diff(want, &have)?;
        let at = if docs.len() > 1 {
            format!("output {i}: ")
        } else {
            String::new()
        };
        if changes.is_empty() {
            out.push(format!("{at}the same values, keys in another order"));
        }
        out.extend(changes.iter().map(|c| format!("{at}{c}")));
    }
    Ok(out)
}

/// The JSON documents in `text`, one after the other, each compact.
fn jaq_docs(text: &str) -> Result<Vec<String>, String> {
    let mut docs = Vec::new();
    let mut stream =
        serde_json::Deserializer::from_str(text).into_iter::<&serde_json::value::RawValue>();
    for doc in stream.by_ref() {
        let doc = doc.map_err(|e| e.to_string())?;
        docs.push(diff::compact(doc.get())?);
    }
    Ok(docs)
}

fn diff_cmd(args: DiffArgs) -> anyhow::Result<i32> {
    let timeout = Duration::from_secs(5);
    let (a, b, samples) = match &args.config {
        None => {
            let [a, b, samples @ ..] = args.args.as_slice() else {
                bail!(
                    "give two mapping files and one or more samples (or --config, --route, --from, --to)"
                );
            };
            (
                load(a, Emits::Body, timeout)?,
                load(b, Emits::Body, timeout)?,
                samples,
            )
        }
        Some(config) => {
            let (a, b) = versions(config, &args)?;
            (a, b, args.args.as_slice())
        }
    };
    if samples.is_empty() {
        bail!("give one or more samples (JSON files)");
    }
    println!("--- {}\n+++ {}", a.file.display(), b.file.display());
    let mut differing = 0;
    for sample in samples {
        let input = read(sample)?;
        let (x, y) = (outputs(&a, &input, sample)?, outputs(&b, &input, sample)?);
        let lines = changes(&x, &y)?;
        if lines.is_empty() {
            println!("{}: the same", sample.display());
            continue;
        }
        differing += 1;
        println!("{}:", sample.display());
        for l in lines {
            println!("  {l}");
        }
    }
    Ok(if differing > 0 { 1 } else { 0 })
}

fn changes(x: &[JsonText], y: &[JsonText]) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    if x.len() != y.len() {
        out.push(format!("{} output(s) → {} output(s)", x.len(), y.len()));
    }
    for (a, b) in x.iter().zip(y) {
        let c = diff::diff(a.as_str(), b.as_str()).map_err(anyhow::Error::msg)?;
        out.extend(c.iter().map(ToString::to_string));
    }
    Ok(out)
}

/// The route's mapping at `--from` and `--to` (by default the system's
/// `api_version` and `next_api_version`).
fn versions(config: &Path, args: &DiffArgs) -> anyhow::Result<(Mapping, Mapping)> {
    let cfg = Config::load(config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let Some(name) = &args.route else {
        bail!("--config needs --route");
    };
    let Some(route) = cfg.routes.get(name.as_str()) else {
        bail!("no route {name} in {}", config.display());
    };
    let Some(live) = route.transform.mapping() else {
        bail!("route {name} has no mapping (transform is passthrough)");
    };
    let system = cfg.systems.get(&route.destination.system);
    let from = args
        .from
        .clone()
        .or_else(|| system.and_then(|s| s.api_version.clone()));
    let to = args
        .to
        .clone()
        .or_else(|| system.and_then(|s| s.next_api_version.clone()));
    let (Some(from), Some(to)) = (from, to) else {
        bail!("give --from and --to (the system sets no api_version or next_api_version)");
    };
    let file = |v: &str| {
        live.for_version(v)
            .with_context(|| format!("route {name}'s transform has no {{api_version}} in its path"))
    };
    let timeout = cfg.server.jq_timeout;
    Ok((
        load(&file(&from)?, live.emits, timeout)?,
        load(&file(&to)?, live.emits, timeout)?,
    ))
}
