//! The child's side: `lore parse-worker` under its own limits, answering requests until its stdin closes.

use std::io::{self, BufReader, BufWriter, Write};
use std::time::{Duration, Instant};

use lore_core::budget::Budgets;
use lore_core::error::{Code, Error};

use super::*;
use crate::parse::{self, ParseOptions, Parsed};

/// The child's side (`lore parse-worker --budgets <json>`): installs the budgets, limits its own
/// memory, then answers requests until its stdin closes. Call it before anything else in the
/// process starts threads or reserves memory.
pub fn serve_child(budgets: Budgets) -> io::Result<()> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let memory = budgets.parser_memory_bytes;
    let cpu_seconds = budgets.parser_cpu_seconds;
    lore_core::budget::install(budgets);
    // Responses keep stdout for themselves; whatever else a library prints goes to stderr.
    let protocol = rustix::io::dup(io::stdout())?;
    rustix::stdio::dup2_stdout(io::stderr())?;
    let mut output = BufWriter::new(std::fs::File::from(protocol));
    // Limits can only be lowered below an inherited hard limit, never raised past it.
    let capped = |resource: Resource, value: u64| getrlimit(resource).maximum.map_or(value, |hard| value.min(hard));
    let memory = capped(Resource::As, memory);
    setrlimit(Resource::As, Rlimit { current: Some(memory), maximum: Some(memory) })?;
    // A crash leaves no core file of up to the whole address space behind.
    setrlimit(Resource::Core, Rlimit { current: Some(0), maximum: Some(0) })?;
    let tests = std::env::var(TEST_ENV).is_ok_and(|v| v == "1");
    let mut input = BufReader::new(io::stdin().lock());
    // The typical wait for the next file (an exponential average, in µs).
    let mut gap_us = 0.0f64;
    loop {
        let waiting = Instant::now();
        if input.buffer().is_empty() && gap_us < CHILD_SPIN.as_micros() as f64 {
            spin_until_readable(input.get_ref(), CHILD_SPIN);
        }
        let Some(kind) = read_frame(&mut input, 1 << 10)? else { return Ok(()) };
        gap_us = 0.8 * gap_us + 0.2 * waiting.elapsed().as_micros() as f64;
        let Some(bytes) = read_frame(&mut input, u64::MAX)? else { return Ok(()) };
        // RLIMIT_CPU counts the process's whole life: this file gets `cpu_seconds` more than
        // the files before it used. Past it the kernel sends SIGXCPU, which ends the process.
        let used = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime).tv_sec.max(0) as u64;
        let limit = capped(Resource::Cpu, used + 1 + cpu_seconds);
        setrlimit(Resource::Cpu, Rlimit { current: Some(limit), maximum: getrlimit(Resource::Cpu).maximum })?;
        let kind = String::from_utf8_lossy(&kind).into_owned();
        let response = match kind.strip_prefix("test:") {
            Some(command) if tests => test_command(command, &bytes),
            _ => handle(&kind, &bytes),
        };
        write_response(&mut output, response)?;
        output.flush()?;
    }
}

pub(crate) fn handle(request: &str, bytes: &[u8]) -> Response {
    // `table:<kind>`: the file's tables as JSON rows, instead of its text.
    let (tables, kind) = match request.strip_prefix("table:") {
        Some(kind) => (true, kind),
        None => (false, request),
    };
    let (kind, options) = kind.split_once('?').unwrap_or((kind, ""));
    let options: ParseOptions = if options.is_empty() {
        ParseOptions::default()
    } else {
        match serde_json::from_str(options) {
            Ok(options) => options,
            Err(e) => {
                return Response::Error { code: Code::Internal.as_str().into(), message: format!("options: {e}") };
            }
        }
    };
    let Some(kind) = from_wire(kind) else {
        return Response::Error { code: Code::Internal.as_str().into(), message: format!("unknown file kind {kind}") };
    };
    let work = || {
        if !tables {
            return parse::parse_with(kind, bytes, options);
        }
        let rows = serde_json::to_string(&parse::tables(kind, bytes)?).map_err(Error::internal)?;
        Ok(Parsed { text: rows, ..Parsed::default() })
    };
    match std::panic::catch_unwind(work) {
        Ok(Ok(parsed)) => Response::Ok(parsed),
        Ok(Err(e)) if e.code == Code::Internal => {
            Response::Error { code: e.code.as_str().into(), message: e.to_string() }
        }
        Ok(Err(e)) => Response::Error { code: e.code.as_str().into(), message: e.message },
        Err(_) => Response::Error { code: Code::Internal.as_str().into(), message: "the parser panicked".into() },
    }
}

/// The ways a parser can go wrong, on demand (only with [`TEST_ENV`] set).
pub(crate) fn test_command(command: &str, body: &[u8]) -> Response {
    match command {
        "abort" => std::process::abort(),
        "allocate" => {
            let n: usize = String::from_utf8_lossy(body).trim().parse().unwrap_or(0);
            let block = vec![1u8; n];
            std::hint::black_box(&block);
            Response::Error { code: Code::CorruptFile.as_str().into(), message: format!("allocated {n} bytes") }
        }
        "spin" => {
            let mut x = 0u64;
            loop {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        }
        "sleep" => loop {
            std::thread::sleep(Duration::from_secs(3600));
        },
        "overflow" => {
            fn deeper(n: u64) -> u64 {
                let frame = std::hint::black_box([n as u8; 4096]);
                if n == 0 { u64::from(frame[0]) } else { deeper(n - 1).wrapping_add(u64::from(frame[1])) }
            }
            let depth = deeper(std::hint::black_box(u64::MAX));
            Response::Error { code: Code::CorruptFile.as_str().into(), message: format!("{depth}") }
        }
        other => Response::Error { code: Code::Internal.as_str().into(), message: format!("no test command {other}") },
    }
}
