//! Webhook delivery throughput: the dispatcher's own sender (`webhook_dispatch::client`,
//! pinned to the receiver's CA, as a subscription with a certificate is) against a bare
//! `reqwest` POST loop to the same local HTTPS receiver, one request after another.
//! Prints deliveries per second and the ratio (issue 14's target: at least 0.8).
//!
//!   cargo bench -p koppel-e2e --bench webhook_throughput     (tools/bench.sh runs it)

use std::time::Instant;

use koppel_e2e::receiver::Receiver;
use webhook_dispatch::client::{Outgoing, Sender};

const DELIVERIES: usize = 300;
const BODY: &str = r#"{"type":"case.updated","timestamp":"2026-12-03T12:00:00Z","data":{"id":"case_1","subject":"Lantaarnpaal defect"}}"#;

#[tokio::main]
async fn main() {
    let receiver = Receiver::start(&[]).await;
    let sender = Sender::new(true).expect("sender");
    let headers = vec![("x-partner".to_owned(), "bench".to_owned())];
    let outgoing = Outgoing {
        url: &receiver.url,
        ca_certificate_pem: Some(&receiver.ca_pem),
        webhook_id: "msg_bench",
        timestamp: 1_796_000_000,
        signature: "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=",
        basic: None,
        headers: &headers,
        body: BODY,
    };
    let bare = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(receiver.ca_pem.as_bytes()).expect("CA"),
        )
        .build()
        .expect("client");

    // One warm-up each: the first connection and handshake are not throughput.
    assert_eq!(sender.send(&outgoing).await.status, Some(200));
    bare.post(&receiver.url)
        .body(BODY)
        .send()
        .await
        .expect("bare");

    let t = Instant::now();
    for _ in 0..DELIVERIES {
        let reply = sender.send(&outgoing).await;
        assert_eq!(reply.status, Some(200), "{:?}", reply.error);
    }
    let koppel = DELIVERIES as f64 / t.elapsed().as_secs_f64();

    let t = Instant::now();
    for _ in 0..DELIVERIES {
        let r = bare
            .post(&receiver.url)
            .header("content-type", "application/json")
            .header("webhook-id", outgoing.webhook_id)
            .header("webhook-timestamp", outgoing.timestamp.to_string())
            .header("webhook-signature", outgoing.signature)
            .header("x-partner", "bench")
            .body(BODY)
            .send()
            .await
            .expect("bare");
        assert_eq!(r.status(), 200);
        r.bytes().await.expect("body");
    }
    let baseline = DELIVERIES as f64 / t.elapsed().as_secs_f64();

    println!(
        "\nWebhook delivery to a local HTTPS receiver ({DELIVERIES} in a row, pinned CA)\n  \
         Koppel's sender   {koppel:8.0} /s\n  bare reqwest      {baseline:8.0} /s\n  ratio             {:8.2}",
        koppel / baseline
    );
}
