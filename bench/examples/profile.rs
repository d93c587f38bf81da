//! One delivery path end to end, over and over, for a profiler:
//!
//! ```sh
//! cargo build --profile bench -p sentinel-bench --example profile
//! perf record -g target/release/examples/profile cloudwatch 20
//! ```
//!
//! Paths: `s3`, `cloudwatch`, `kinesis`, `firehose`; then the rounds (10)
//! and the corpus size in MB (100).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use sentinel_bench::{Corpus, Pipeline, firehose_object, gzip, kinesis_event, subscription_event};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let path = args.get(1).map_or("cloudwatch", String::as_str);
    let rounds: usize = args.get(2).and_then(|r| r.parse().ok()).unwrap_or(10);
    let mb: usize = args.get(3).and_then(|m| m.parse().ok()).unwrap_or(100);
    let corpus = Corpus::generate(mb << 20);
    let envelopes = corpus.envelopes(2000);
    let deliveries: Vec<Vec<u8>> = match path {
        "s3" => vec![gzip(&corpus.json_lines())],
        "cloudwatch" => envelopes.iter().map(|e| subscription_event(e)).collect(),
        "kinesis" => envelopes.chunks(4).enumerate().map(|(i, c)| kinesis_event(c, i * 4)).collect(),
        "firehose" => vec![firehose_object(&envelopes)],
        other => panic!("no path {other}: s3, cloudwatch, kinesis or firehose"),
    };
    for _ in 0..rounds {
        let mut p = Pipeline::default();
        for (i, d) in deliveries.iter().enumerate() {
            match path {
                "s3" | "firehose" => p.read_object(&format!("{path}-{i}"), d),
                "kinesis" => p.deliver_kinesis(&format!("{path}-{i}"), d),
                _ => p.deliver(&format!("{path}-{i}"), d),
            }
        }
        assert_eq!(p.counts.kept, corpus.writes);
    }
}
