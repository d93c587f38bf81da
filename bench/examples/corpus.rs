//! Writes generated audit traffic as one gzip JSON-lines object, for
//! measuring `sentinel replay` on large inputs (peak memory stays flat as
//! the input grows):
//!
//! ```sh
//! cargo run --profile bench -p sentinel-bench --example corpus -- audit.jsonl.gz 1000
//! /usr/bin/time -v sentinel replay --audit audit.jsonl.gz > /dev/null
//! ```
//!
//! Arguments: the file, then its size in MB of audit events (100). Past
//! 100 MB the same 100 MB is written again as further gzip members.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let path = args.get(1).expect("the file to write");
    let mb: usize = args.get(2).and_then(|m| m.parse().ok()).unwrap_or(100);
    let corpus = sentinel_bench::Corpus::generate(mb.min(100) << 20);
    let member = sentinel_bench::gzip(&corpus.json_lines());
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for _ in 0..mb.div_ceil(100) {
        file.write_all(&member).unwrap();
    }
    file.flush().unwrap();
}
