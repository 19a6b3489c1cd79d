//! The stdio transport: newline-delimited JSON-RPC on stdin and stdout, one session.
//! Logs go to stderr. When stdin ends, running requests finish, then the process exits.

use futures::{Stream, StreamExt};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::jsonrpc::{Message, Payload};
use crate::server::{Outbound, Outbox, Session};

pub async fn run() -> anyhow::Result<()> {
    let (out, mut outgoing) = mpsc::unbounded_channel::<Outbound>();
    let writer = tokio::spawn(async move {
        let mut stdout = tokio::io::stdout();
        while let Some(item) = outgoing.recv().await {
            let (Outbound::Message(message) | Outbound::Done(Some(message))) = item else {
                continue;
            };
            let mut line = serde_json::to_vec(&message)?;
            line.push(b'\n');
            stdout.write_all(&line).await?;
            stdout.flush().await?;
        }
        anyhow::Ok(())
    });
    let lines = BufReader::new(tokio::io::stdin()).lines();
    let incoming = futures::stream::unfold(lines, |mut lines| async move {
        lines
            .next_line()
            .await
            .transpose()
            .map(|line| (line, lines))
    });
    serve_session(incoming, out).await?;
    writer.await??;
    Ok(())
}

/// Serves one session whose client messages arrive on `incoming` (one JSON-RPC
/// payload each) and whose answers go to `out`, in the order they are ready. When
/// `incoming` ends, running requests finish, then it returns (also used by the legacy
/// SSE transport, whose POSTs feed one session's `incoming`).
pub async fn serve_session(
    incoming: impl Stream<Item = std::io::Result<String>>,
    out: Outbox,
) -> anyhow::Result<()> {
    let session = Session::new(out.clone());
    let mut running = JoinSet::new();
    let mut incoming = std::pin::pin!(incoming);
    while let Some(line) = incoming.next().await {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        match Payload::parse(line.as_bytes()) {
            Err(error) => send(&out, crate::jsonrpc::response(&Value::Null, Err(error))),
            Ok(Payload::Single(value)) => {
                receive(&session, value, &out, &mut running);
            }
            Ok(Payload::Batch(values)) => {
                let (batch_out, batch_in) = mpsc::unbounded_channel();
                let mut expected = 0;
                for value in values {
                    expected += usize::from(receive(&session, value, &batch_out, &mut running));
                }
                running.spawn(answer_batch(batch_in, expected, out.clone()));
            }
        }
        // Reap finished requests so a long session does not accumulate them.
        while running.try_join_next().is_some() {}
    }

    tracing::debug!("the client's messages ended; finishing running requests");
    session.stop_client_requests();
    while running.join_next().await.is_some() {}
    Ok(())
}

fn send(out: &Outbox, message: Value) {
    let _ = out.send(Outbound::Message(message));
}

/// Handles one message; returns whether it will produce a response on `out`.
fn receive(
    session: &std::sync::Arc<Session>,
    value: Value,
    out: &Outbox,
    running: &mut JoinSet<()>,
) -> bool {
    match Message::from_value(value) {
        Ok(Message::Request { id, method, params }) => {
            running.spawn(
                session
                    .clone()
                    .handle_request(id, method, params, out.clone()),
            );
            true
        }
        Ok(Message::Notification { method, params }) => {
            session.handle_notification(&method, params);
            false
        }
        Ok(Message::Response { id, outcome }) => {
            session.handle_response(&id, outcome);
            false
        }
        Err(invalid) => {
            let _ = out.send(Outbound::Done(Some(invalid.into_response())));
            true
        }
    }
}

/// Passes a batch's notifications through as they come and answers the batch with
/// one array once all its requests are done.
async fn answer_batch(
    mut batch: mpsc::UnboundedReceiver<Outbound>,
    mut expected: usize,
    out: Outbox,
) {
    let mut responses = Vec::new();
    while expected > 0
        && let Some(item) = batch.recv().await
    {
        match item {
            Outbound::Message(message) => send(&out, message),
            Outbound::Done(response) => {
                expected -= 1;
                responses.extend(response);
            }
            Outbound::CloseStream => {}
        }
    }
    if !responses.is_empty() {
        send(&out, Value::Array(responses));
    }
}
