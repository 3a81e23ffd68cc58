//! Peak memory of the server and its parser processes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub(crate) fn vm_rss_kib(pid: u32) -> Option<u64> {
    crate::proc_memory_kib(pid, "VmRSS")
}

pub(crate) fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// The direct children of a process (the parse workers), from every thread's `children` list.
pub(crate) fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for task in tasks.flatten() {
            if let Ok(list) = std::fs::read_to_string(task.path().join("children")) {
                out.extend(list.split_whitespace().filter_map(|p| p.parse::<u32>().ok()));
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

#[derive(Default)]
pub(crate) struct Memory {
    /// Peak of the server process alone, sampled (KiB).
    pub(crate) server: u64,
    /// Peak of the server and its parse workers together, sampled (KiB).
    pub(crate) with_children: u64,
    /// Peak of any one child (KiB).
    pub(crate) child: u64,
    pub(crate) samples: u64,
}

/// Samples the server's memory (and its children's) every second until `stop`.
pub(crate) fn watch_memory(pid: u32, stop: Arc<AtomicBool>) -> (Arc<Mutex<Memory>>, std::thread::JoinHandle<()>) {
    let memory = Arc::new(Mutex::new(Memory::default()));
    let m = memory.clone();
    let handle = std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            if let Some(server) = vm_rss_kib(pid) {
                let children: Vec<u64> = children_of(pid).into_iter().filter_map(vm_rss_kib).collect();
                let mut m = m.lock().expect("memory");
                m.server = m.server.max(server);
                m.with_children = m.with_children.max(server + children.iter().sum::<u64>());
                m.child = m.child.max(children.iter().copied().max().unwrap_or(0));
                m.samples += 1;
            }
            std::thread::sleep(Duration::from_millis(1000));
        }
    });
    (memory, handle)
}
