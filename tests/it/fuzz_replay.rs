//! The fuzz targets (`fuzz/`, run for minutes by `fuzz/run.sh`) in the
//! normal suite: every case fuzzing found (`tests/fixtures/fuzz/<target>/`)
//! and every seed (`fuzz/seeds/<target>/`) is replayed, then a short
//! deterministic mutation round runs each target on a few thousand variants
//! of them (seconds, not minutes).

#[path = "../../fuzz/common/targets.rs"]
mod targets;

use std::path::{Path, PathBuf};

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.file_name().is_none_or(|n| n != "README.md"))
        .collect();
    v.sort();
    v
}

fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    [
        root.join("tests/fixtures/fuzz").join(target),
        root.join("fuzz/seeds").join(target),
    ]
    .iter()
    .flat_map(|d| files(d))
    .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
    .collect()
}

/// Run `f` on `data`; the panic message if it panicked.
fn survives(f: targets::Target, data: &[u8]) -> Result<(), String> {
    std::panic::catch_unwind(|| f(data)).map_err(|e| {
        e.downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    })
}

#[test]
fn every_found_case_and_seed_is_handled() {
    let mut failed = Vec::new();
    let mut count = 0;
    for (name, f) in targets::TARGETS {
        let cases = inputs(name);
        assert!(!cases.is_empty(), "no seeds for target {name}");
        for (file, data) in cases {
            count += 1;
            if let Err(msg) = survives(f, &data) {
                failed.push(format!("{name}: {file}: {msg}"));
            }
        }
    }
    assert!(
        failed.is_empty(),
        "fuzz cases fail again:\n{}",
        failed.join("\n")
    );
    eprintln!("{count} fuzz cases replayed");
}

/// xorshift64*: the same variants on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Pieces that mean something to one parser or another.
const TOKENS: &[&[u8]] = &[
    b"\r\n",
    b"\n\n",
    b"\r\n\r\n",
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b":",
    b",",
    b"\\u0000",
    b"- [ ] ",
    b"- [x] ",
    b"1. ",
    b"## ",
    b"### Sub-Tasks\n",
    b"#",
    b"`",
    b"```\n",
    b"depends on #",
    b"after task ",
    b"%",
    b"%2e%2e",
    b"?token=",
    b"&",
    b"/../",
    b"HTTP/1.1",
    b"Host: ",
    b"Connection: close",
    b"Transfer-Encoding: chunked",
    b"\"status\":\"completed\"",
    b"\"type\":\"result\"",
    b"\"waves\":",
    b"\"tasks\":",
    b"null",
    b"true",
    b"-0",
    b"1e999",
    b"18446744073709551616",
    b"\xff",
    b"\xc3",
    b"\xe2\x80\xae",
    b"\x1b[",
    b"\t",
];

fn mutate(rng: &mut Rng, data: &mut Vec<u8>, others: &[(String, Vec<u8>)]) {
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(data.len() + 1);
        match rng.below(7) {
            0 if !data.is_empty() => {
                let i = rng.below(data.len());
                data[i] ^= 1 << rng.below(8);
            }
            1 => data.insert(at, rng.next() as u8),
            2 if !data.is_empty() => {
                let end = (at + 1 + rng.below(16)).min(data.len());
                data.drain(at.min(end)..end);
            }
            3 => {
                let t = TOKENS[rng.below(TOKENS.len())];
                data.splice(at..at, t.iter().copied());
            }
            4 if !data.is_empty() => {
                let from = rng.below(data.len());
                let end = (from + 1 + rng.below(64)).min(data.len());
                let piece = data[from..end].repeat(1 + rng.below(8));
                data.splice(at..at, piece);
            }
            5 => {
                let other = &others[rng.below(others.len())].1;
                if !other.is_empty() {
                    let from = rng.below(other.len());
                    let end = (from + 1 + rng.below(256)).min(other.len());
                    data.splice(at..at, other[from..end].iter().copied());
                }
            }
            _ => data.truncate(at),
        }
    }
    data.truncate(64 * 1024);
}

#[test]
fn a_short_mutation_round_finds_nothing() {
    const ROUNDS: usize = 10_000;
    for (name, f) in targets::TARGETS {
        let cases = inputs(name);
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ name.len() as u64);
        let start = std::time::Instant::now();
        for round in 0..ROUNDS {
            let mut data = cases[rng.below(cases.len())].1.clone();
            mutate(&mut rng, &mut data, &cases);
            if let Err(msg) = survives(f, &data) {
                panic!(
                    "target {name}, round {round}: {msg}\ninput: {:?}",
                    String::from_utf8_lossy(&data)
                );
            }
        }
        eprintln!("{name}: {ROUNDS} variants in {:?}", start.elapsed());
    }
}
