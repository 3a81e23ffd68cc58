//! Parsing in child processes. A file can make a parser ask for more memory than the machine
//! has (a sparse spreadsheet's dense grid, a decompression bomb), spin, or crash; inside the
//! server an allocation failure aborts the whole process, which neither `catch_unwind` nor a
//! timeout can stop. A [`ParserPool`] runs the parsers in reusable children of the same binary
//! (`lore parse-worker`, [`serve_child`]): each sets an address-space limit on itself
//! (`parser_memory_bytes`) and, before each file, a CPU limit (`parser_cpu_seconds` more than
//! it has used so far); the parent kills one that outlives a wall-clock limit. A child that dies
//! fails that one document with `resource_limit_exceeded`, saying which limit (memory, CPU,
//! time) or that the parser crashed, and is replaced by a fresh one.
//!
//! The protocol, over the child's stdin and stdout: a request is two frames, the file's kind
//! (its registry name; `code:<language>` for source code, `image:<format>` for an image; then
//! `?` and the [`ParseOptions`] as JSON when they are not the defaults) and the file's bytes; a
//! response is a frame of JSON, `{"error": {"code": ..., "message": ...}}` with a code of the
//! error table, or `{"ok": {"title", "metadata", "locations", "regions", "raw_is_text"}}`
//! followed by two frames of UTF-8,
//! the text and the raw text (empty when it is the text). A frame is a little-endian u64 length
//! and that many bytes. The texts travel as they are, not escaped into JSON.

use std::io::{self, Read, Write};
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use lore_core::error::{Error, Result};
use serde::{Deserialize, Serialize};

use crate::detect::FileKind;
use crate::parse::{ParseOptions, Parsed};

mod child;
mod pool;

pub use child::*;
pub use pool::*;

/// The hidden subcommand of `lore` that runs [`serve_child`].
pub const SUBCOMMAND: &str = "parse-worker";
/// With this variable set to `1` in its environment, a child also takes the test commands
/// (`test:abort`, `test:allocate`, `test:spin`, `test:sleep`, `test:overflow`) that prove each
/// way of dying fails one job and nothing else.
pub const TEST_ENV: &str = "LORE_PARSE_WORKER_TEST";
/// A child is replaced after this many files, or sooner when it holds more than
/// [`RESIDENT_PER_CHILD`] (whatever a parser leaks, or keeps after a large file, goes with it).
/// Replacing costs a process start and the parsers' first-use set-up, which a small file pays
/// many times over: a count alone that is low enough to catch a leak made a corpus of small
/// files several per cent slower.
pub(crate) const JOBS_PER_CHILD: u32 = 20_000;
/// Resident memory past which an idle child is replaced.
pub(crate) const RESIDENT_PER_CHILD: u64 = 512 << 20;
/// A child's memory is read every this many files, and after any file larger than
/// [`LARGE_FILE`].
pub(crate) const RESIDENT_CHECK_EVERY: u32 = 32;
pub(crate) const LARGE_FILE: usize = 4 << 20;
/// Pipe buffers this large let a typical file and its text pass in one write each way, without
/// the reader being woken for every 64 KiB (Linux's default; unprivileged processes may ask for
/// up to `/proc/sys/fs/pipe-max-size`, 1 MiB by default).
pub(crate) const PIPE_BYTES: usize = 1 << 20;
/// Lines of a child's stderr kept to tell why it died.
pub(crate) const STDERR_LINES: usize = 20;

#[derive(Debug)]
pub(crate) enum Response {
    Ok(Parsed),
    Error { code: String, message: String },
}

/// A response's first frame.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Header {
    Ok {
        title: Option<String>,
        metadata: serde_json::Map<String, serde_json::Value>,
        locations: Vec<crate::formats::Location>,
        #[serde(default)]
        regions: Vec<crate::formats::Region>,
        raw_is_text: bool,
    },
    Error {
        code: String,
        message: String,
    },
}

pub(crate) fn write_response(w: &mut impl Write, response: Response) -> io::Result<()> {
    let json = |h: &Header| serde_json::to_vec(h).map_err(io::Error::other);
    match response {
        Response::Error { code, message } => write_frame(w, &json(&Header::Error { code, message })?),
        Response::Ok(Parsed { title, raw, text, metadata, locations, regions }) => {
            let raw_is_text = raw == text;
            write_frame(w, &json(&Header::Ok { title, metadata, locations, regions, raw_is_text })?)?;
            write_frame(w, text.as_bytes())?;
            write_frame(w, if raw_is_text { b"" } else { raw.as_bytes() })
        }
    }
}

/// The next response; `None` when the stream ends before it.
pub(crate) fn read_response(r: &mut impl Read, max: u64) -> io::Result<Option<Response>> {
    let invalid = |e: &dyn std::fmt::Display| io::Error::new(io::ErrorKind::InvalidData, e.to_string());
    let Some(header) = read_frame(r, max)? else { return Ok(None) };
    let header: Header = serde_json::from_slice(&header).map_err(|e| invalid(&e))?;
    let mut text = || -> io::Result<String> {
        let frame = read_frame(r, max)?.ok_or(io::ErrorKind::UnexpectedEof)?;
        String::from_utf8(frame).map_err(|e| invalid(&e))
    };
    Ok(Some(match header {
        Header::Error { code, message } => Response::Error { code, message },
        Header::Ok { title, metadata, locations, regions, raw_is_text } => {
            let text_ = text()?;
            let raw = text()?;
            let raw = if raw_is_text { text_.clone() } else { raw };
            Response::Ok(Parsed { title, raw, text: text_, metadata, locations, regions })
        }
    }))
}

/// How a file's kind travels: its registry name, `code:<language>` for source code,
/// `image:<format>` for an image.
pub(crate) fn wire_name(kind: FileKind) -> String {
    match kind {
        FileKind::Code(language) => format!("code:{language}"),
        FileKind::Image(format) => format!("image:{format}"),
        other => other.name().to_string(),
    }
}

/// A parse request's first frame: the kind, and the options when they are not the defaults.
pub(crate) fn wire_request(kind: FileKind, options: ParseOptions) -> String {
    match serde_json::to_string(&options) {
        Ok(json) if options != ParseOptions::default() => format!("{}?{json}", wire_name(kind)),
        _ => wire_name(kind),
    }
}

pub(crate) fn from_wire(name: &str) -> Option<FileKind> {
    if let Some(language) = name.strip_prefix("code:") {
        return crate::detect::language_named(language).map(FileKind::Code);
    }
    if let Some(format) = name.strip_prefix("image:") {
        return crate::detect::image_named(format).map(FileKind::Image);
    }
    crate::detect::KINDS.iter().find(|(_, n, ..)| *n == name).map(|(k, ..)| *k)
}

pub(crate) fn write_frame(w: &mut impl Write, bytes: &[u8]) -> io::Result<()> {
    w.write_all(&(bytes.len() as u64).to_le_bytes())?;
    w.write_all(bytes)
}

/// The next frame; `None` at the end of the stream.
pub(crate) fn read_frame(r: &mut impl Read, max: u64) -> io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 8];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u64::from_le_bytes(len);
    if len > max {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("a frame of {len} bytes")));
    }
    let mut buf = Vec::with_capacity(len.min(1 << 20) as usize);
    r.take(len).read_to_end(&mut buf)?;
    if buf.len() as u64 != len {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(Some(buf))
}

/// Kills a child whose file takes longer than the wall-clock limit. One thread per pool watches
/// every file in flight (a thread per file cost more than reading a small file).
#[derive(Default)]
pub(crate) struct Watchdog {
    state: Mutex<Watch>,
    changed: Condvar,
}

#[derive(Default)]
pub(crate) struct Watch {
    next: u64,
    started: bool,
    closed: bool,
    armed: Vec<Alarm>,
    /// When the watching thread will next look, while it sleeps: an alarm due later needs no
    /// wake-up, so the usual file (due a whole wall-clock limit from now) costs none.
    wakes_at: Option<Instant>,
    /// How long it sleeps with nothing armed: the last limit armed, so that the next file's
    /// alarm falls due after it wakes anyway.
    idle_wait: Duration,
}

pub(crate) struct Alarm {
    id: u64,
    deadline: Instant,
    child: Arc<Mutex<Child>>,
    timed_out: Arc<AtomicBool>,
}

impl Watchdog {
    fn arm(self: &Arc<Self>, deadline: Instant, child: Arc<Mutex<Child>>, timed_out: Arc<AtomicBool>) -> Result<u64> {
        let mut watch = lock(&self.state);
        if !watch.started {
            let me = self.clone();
            std::thread::Builder::new()
                .name("parse-watchdog".into())
                .spawn(move || me.watch())
                .map_err(|e| Error::internal(format!("cannot start a parser watchdog: {e}")))?;
            watch.started = true;
        }
        watch.next += 1;
        let id = watch.next;
        watch.idle_wait = deadline.saturating_duration_since(Instant::now());
        watch.armed.push(Alarm { id, deadline, child, timed_out });
        let sooner = watch.wakes_at.is_none_or(|wakes| deadline < wakes);
        drop(watch);
        if sooner {
            self.changed.notify_one();
        }
        Ok(id)
    }

    fn disarm(&self, id: u64) {
        lock(&self.state).armed.retain(|a| a.id != id);
    }

    fn close(&self) {
        lock(&self.state).closed = true;
        self.changed.notify_one();
    }

    fn watch(&self) {
        let mut watch = lock(&self.state);
        loop {
            if watch.closed {
                return;
            }
            let now = Instant::now();
            for alarm in watch.armed.iter().filter(|a| a.deadline <= now) {
                alarm.timed_out.store(true, Ordering::SeqCst);
                let _ = lock(&alarm.child).kill();
            }
            watch.armed.retain(|a| a.deadline > now);
            let wait = watch
                .armed
                .iter()
                .map(|a| a.deadline - now)
                .min()
                .unwrap_or(watch.idle_wait.max(Duration::from_millis(10)));
            watch.wakes_at = Some(now + wait);
            watch = self.changed.wait_timeout(watch, wait).unwrap_or_else(PoisonError::into_inner).0;
            watch.wakes_at = None;
        }
    }
}

/// How long a side of the pipe waits awake for the other before sleeping in read().
pub(crate) const SPIN: Duration = Duration::from_micros(250);
/// How long a child waits awake for its next file, while files have been coming this quickly:
/// a parent feeding it file after file saves the child a wake-up per file. A child whose files
/// come further apart (a busy server, between documents) sleeps at once and spends nothing.
pub(crate) const CHILD_SPIN: Duration = Duration::from_millis(2);

/// Returns once `fd` has data or `spin` has passed, without sleeping.
pub(crate) fn spin_until_readable(fd: &impl std::os::fd::AsFd, spin: Duration) {
    use rustix::event::{PollFd, PollFlags, poll};
    let started = std::time::Instant::now();
    loop {
        let mut fds = [PollFd::new(fd, PollFlags::IN)];
        match poll(&mut fds, Some(&rustix::time::Timespec { tv_sec: 0, tv_nsec: 0 })) {
            Ok(n) if n > 0 => return,
            Ok(_) => {}
            Err(_) => return,
        }
        if started.elapsed() >= spin {
            return;
        }
        std::hint::spin_loop();
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;
    use std::process::ExitStatus;

    use super::*;
    use crate::parse;

    #[test]
    fn kinds_travel_by_name() {
        for kind in
            crate::detect::KINDS.iter().map(|(k, ..)| *k).chain([FileKind::Code("rust"), FileKind::Code("text")])
        {
            assert_eq!(from_wire(&wire_name(kind)), Some(kind), "{kind:?}");
        }
        assert_eq!(from_wire("code:klingon"), None);
        assert_eq!(from_wire("nonsense"), None);
    }

    #[test]
    fn frames_and_responses_round_trip() {
        let parsed = parse::parse(FileKind::Xlsx, &crate::samples::xlsx()).expect("xlsx");
        assert!(!parsed.locations.is_empty());
        let text = parse::parse(FileKind::Text, "  标题\r\n\r\n正文。".as_bytes()).expect("text");
        assert_ne!(text.raw, text.text);
        for parsed in [parsed, text] {
            let mut wire = Vec::new();
            write_response(&mut wire, Response::Ok(parsed.clone())).expect("write");
            match read_response(&mut wire.as_slice(), u64::MAX).expect("read") {
                Some(Response::Ok(back)) => assert_eq!(back, parsed),
                other => panic!("{other:?}"),
            }
        }
        let mut wire = Vec::new();
        write_response(&mut wire, Response::Error { code: "too_many_cells".into(), message: "表格太大".into() })
            .expect("write");
        assert!(matches!(read_response(&mut wire.as_slice(), u64::MAX).expect("read"),
            Some(Response::Error { code, message }) if code == "too_many_cells" && message == "表格太大"));
        let mut wire = Vec::new();
        write_frame(&mut wire, b"0123456789").expect("frame");
        assert!(read_frame(&mut &wire[..12], u64::MAX).is_err(), "a cut frame is an error");
        assert!(read_frame(&mut &[][..], u64::MAX).expect("end").is_none());
        assert!(read_frame(&mut wire.as_slice(), 3).is_err(), "too large");
    }

    #[test]
    fn deaths_are_told_apart() {
        let signal = |s: i32| Some(ExitStatus::from_raw(s));
        let quiet = Stderr::default();
        let oom = Stderr { tail: "memory allocation of 549755813888 bytes failed".into(), out_of_memory: true };
        assert_eq!(classify(true, signal(9), &quiet), Death::Time);
        assert_eq!(classify(false, signal(rustix::process::Signal::XCPU.as_raw()), &quiet), Death::Cpu);
        assert_eq!(classify(false, signal(6), &oom), Death::Memory);
        assert_eq!(classify(false, signal(6), &quiet), Death::Crash);
        assert_eq!(classify(false, None, &quiet), Death::Crash);
    }
}
