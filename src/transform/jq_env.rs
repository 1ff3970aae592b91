//! What a jq program in ferry may use, and the guard it runs under. The
//! environment is jaq's standard library without everything that reaches
//! outside the program: ending the process (`halt`, `halt_error`), the
//! environment (`env`, `$ENV`), other inputs (`input`, `inputs`), the clock
//! and the machine's time zone (`now`, `localtime`, `strflocaltime`) and
//! the log (`debug`, `stderr`). `$now` (seconds, from ferry's clock) stands
//! in for the time; `fromjson` refuses text nested past the input limit.
//! The [`Guard`] is consulted at every step of evaluation (jaq asks its
//! data for the program at each term): past the stack budget of its pool
//! thread, or past the deadline, it unwinds out of jaq with an [`Overrun`]
//! that `jq` catches. A step that never returns (a native loop) is the
//! pool's to give up on.

use std::cell::Cell;
use std::time::Instant;

use jaq_core::box_iter::box_once;
use jaq_core::data::HasLut;
use jaq_core::load::parse::Def;
use jaq_core::native::{Fun, v};
use jaq_core::{Cv, DataT, Error, Exn, Lut, ValXs};
use jaq_json::Val;

use super::json_depth;

/// Deepest input jq reads (the bodies at ingest are held to 128 levels by
/// default; a batch wraps its items two levels deeper). The pool threads'
/// stacks are sized so that reading, walking and printing values this deep
/// fits inside the margin the guard leaves.
pub const MAX_INPUT_DEPTH: usize = 256;

/// Native filters left out, with what each would reach.
const REMOVED_FUNS: [&str; 7] = [
    "halt",
    "env",
    "now",
    "localtime",
    "strflocaltime",
    "debug_empty",
    "stderr_empty",
];
/// Definitions left out: they only wrap removed filters.
const REMOVED_DEFS: [&str; 4] = ["halt", "halt_error", "debug", "stderr"];

/// Names a program might use that ferry does not offer, and why.
const REACHING_OUT: [(&str, &str); 16] = [
    ("halt", "it would end ferry's process"),
    ("halt_error", "it would end ferry's process"),
    (
        "env",
        "it would read ferry's environment (credentials included)",
    ),
    (
        "$ENV",
        "it would read ferry's environment (credentials included)",
    ),
    ("input", "a program sees only its own input"),
    ("inputs", "a program sees only its own input"),
    ("input_filename", "a program sees only its own input"),
    ("input_line_number", "a program sees only its own input"),
    ("$__prog_args", "a program sees only its own input"),
    (
        "now",
        "it reads the clock: use `$now`, the time in seconds ferry gives every run",
    ),
    (
        "localtime",
        "it reads the machine's time zone: use `gmtime`",
    ),
    (
        "strflocaltime",
        "it reads the machine's time zone: use `strftime`",
    ),
    ("debug", "it writes to ferry's log"),
    ("stderr", "it writes to ferry's standard error"),
    ("debug_empty", "it writes to ferry's log"),
    ("stderr_empty", "it writes to ferry's standard error"),
];

/// The data jaq evaluates ferry's programs with: the program and the guard.
pub struct Guarded;

impl DataT for Guarded {
    type V<'a> = Val;
    type Data<'a> = Env<'a>;
}

#[derive(Clone)]
pub struct Env<'a> {
    pub lut: &'a Lut<Guarded>,
    pub guard: &'a Guard,
}

impl<'a> HasLut<'a, Guarded> for Env<'a> {
    fn lut(&self) -> &'a Lut<Guarded> {
        self.guard.step();
        self.lut
    }
}

/// Why evaluation was stopped from inside jaq.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overrun {
    Deadline,
    Recursion,
}

thread_local! {
    /// The lowest stack address evaluation may reach on this thread; 0 where
    /// the thread's stack is unknown (outside the pool: no stack check).
    static STACK_FLOOR: Cell<usize> = const { Cell::new(0) };
}

/// Called first thing on a pool thread: evaluation may use `budget` bytes
/// of stack below this frame.
pub fn enter_pool_thread(budget: usize) {
    let here = stack_address();
    STACK_FLOOR.with(|f| f.set(here.saturating_sub(budget)));
}

#[inline(always)]
fn stack_address() -> usize {
    let probe = 0u8;
    std::hint::black_box(&probe) as *const u8 as usize
}

/// How often (in steps) the clock is read.
const CLOCK_EVERY: u32 = 256;

pub struct Guard {
    floor: usize,
    deadline: Instant,
    steps: Cell<u32>,
}

impl Guard {
    pub fn new(deadline: Instant) -> Guard {
        Guard {
            floor: STACK_FLOOR.with(Cell::get),
            deadline,
            steps: Cell::new(0),
        }
    }

    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    fn step(&self) {
        // Stacks grow down on every target ferry builds for.
        if stack_address() < self.floor {
            std::panic::resume_unwind(Box::new(Overrun::Recursion));
        }
        let n = self.steps.get().wrapping_add(1);
        self.steps.set(n);
        if n.is_multiple_of(CLOCK_EVERY) && Instant::now() >= self.deadline {
            std::panic::resume_unwind(Box::new(Overrun::Deadline));
        }
    }
}

/// jaq's definitions, less those that wrap removed filters.
pub fn defs() -> impl Iterator<Item = Def<&'static str>> {
    jaq_core::defs()
        .chain(jaq_std::defs())
        .chain(jaq_json::defs())
        .filter(|d| !REMOVED_DEFS.contains(&d.name))
}

/// jaq's native filters, less the removed ones, with a depth-checked `fromjson`.
pub fn funs() -> impl Iterator<Item = Fun<Guarded>> {
    jaq_core::funs::<Guarded>()
        .chain(jaq_std::funs::<Guarded>())
        .chain(jaq_json::funs::<Guarded>())
        .filter(|(name, args, _)| {
            !REMOVED_FUNS.contains(name)
                && *name != "fromjson"
                && !(*name == "range" && args.len() == 3)
        })
        .chain([
            jaq_core::native::run::<Guarded>(("fromjson", v(0), fromjson)),
            jaq_core::native::run::<Guarded>(("range", v(3), range)),
        ])
}

/// jaq's `range/3`, stepping the guard at every value: `last(range(infinite))`
/// loops inside one native filter, where nothing else would look at the clock.
fn range<'a>(mut cv: Cv<'a, Guarded>) -> ValXs<'a, Val> {
    use std::cmp::Ordering::{Equal, Greater, Less};
    let guard = cv.0.data().guard;
    let by = cv.0.pop_var();
    let to = cv.0.pop_var();
    let mut from: Result<Val, Exn<'a, Val>> = Ok(cv.0.pop_var());
    let cmp = by.partial_cmp(&Val::from(0isize)).unwrap_or(Equal);
    Box::new(std::iter::from_fn(move || {
        guard.step();
        match from.clone() {
            Ok(x) => match cmp {
                Greater => x < to,
                Less => x > to,
                Equal => x != to,
            }
            .then(|| std::mem::replace(&mut from, (x + by.clone()).map_err(Exn::from))),
            e @ Err(_) => {
                from = Ok(to.clone());
                Some(e)
            }
        }
    }))
}

fn fromjson<'a>(cv: Cv<'a, Guarded>) -> ValXs<'a, Val> {
    use jaq_std::ValT as _;
    let parsed = match cv.1.as_utf8_bytes() {
        None => Err(Error::typ(cv.1.clone(), "string")),
        Some(s) => json_depth::check(s, MAX_INPUT_DEPTH)
            .map_err(Error::str)
            .and_then(|()| {
                jaq_json::read::parse_many(s)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| Error::str(format_args!("cannot parse as JSON: {e}")))
            }),
    };
    match parsed {
        Ok(vals) => Box::new(vals.into_iter().map(Ok)),
        Err(e) => box_once(Err(Exn::from(e))),
    }
}

/// For a program that did not compile: the first name in it that ferry
/// removed, with the reason, so the message says more than "undefined".
pub fn reaching_out(code: &str) -> Option<String> {
    let bytes = code.as_bytes();
    let mut i = 0;
    let mut in_string = false;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            match b {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        if b == b'"' {
            in_string = true;
            i += 1;
            continue;
        }
        if b == b'#' {
            while i < bytes.len() && bytes[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        let starts_name = b.is_ascii_alphabetic() || b == b'_' || b == b'$';
        if !starts_name {
            i += 1;
            continue;
        }
        let start = i;
        i += 1;
        while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
            i += 1;
        }
        // `.env` is a field and `{inputs: .}` a key, both the program's own.
        let field = start > 0 && bytes[start - 1] == b'.';
        let key = code[i..].trim_start().starts_with(':');
        let name = &code[start..i];
        if field || key {
            continue;
        }
        if let Some((_, why)) = REACHING_OUT.iter().find(|(n, _)| *n == name) {
            return Some(format!(
                "`{name}` is not available to ferry's jq programs: {why}"
            ));
        }
    }
    None
}
