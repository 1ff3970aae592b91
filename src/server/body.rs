//! The body-idle timeout: every request body the accept loop hands to the
//! router is wrapped in an [`IdleBody`], which fails with [`BodyIdle`] when
//! no part of the body arrives for `server.body_idle_timeout`. The clock
//! starts when a handler first reads the body and restarts with every
//! chunk, so a slow but steady upload goes on while a stalled one ends;
//! handlers answer it 408 (`read_body`, bulk uploads).

use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::http::StatusCode;
use hyper::body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use crate::problem::Problem;

/// A request body that stopped sending.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("no part of the request body arrived for {}ms", .after.as_millis())]
pub struct BodyIdle {
    pub after: Duration,
}

impl BodyIdle {
    /// The 408 answer.
    pub fn problem(&self) -> Problem {
        Problem::new(
            StatusCode::REQUEST_TIMEOUT,
            "body-timeout",
            "Request timeout",
            format!(
                "no part of the request body arrived for {} ms (server.body_idle_timeout), so the request was abandoned",
                self.after.as_millis()
            ),
        )
    }
}

/// The [`BodyIdle`] behind a body-read error, however deep it is wrapped
/// (axum and http-body-util box the errors of the bodies they wrap).
pub fn idle_timeout(e: &(dyn std::error::Error + 'static)) -> Option<BodyIdle> {
    let mut e = Some(e);
    while let Some(err) = e {
        if let Some(idle) = err.downcast_ref::<BodyIdle>() {
            return Some(*idle);
        }
        e = err.source();
    }
    None
}

/// `inner` with the body-idle timeout.
pub struct IdleBody<B> {
    inner: B,
    after: Duration,
    /// Armed on the first read.
    timer: Option<Pin<Box<Sleep>>>,
}

impl<B> IdleBody<B> {
    pub fn new(inner: B, after: Duration) -> IdleBody<B> {
        IdleBody {
            inner,
            after,
            timer: None,
        }
    }
}

impl<B> Body for IdleBody<B>
where
    B: Body + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = B::Data;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            if let Some(t) = this.timer.as_mut() {
                t.as_mut().reset(Instant::now() + this.after);
            }
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let after = this.after;
        let timer = this
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(after)));
        ready!(timer.as_mut().poll(cx));
        Poll::Ready(Some(Err(Box::new(BodyIdle { after }))))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http_body_util::BodyExt;

    /// A body that sends `first`, then nothing until `more` is sent on the channel.
    fn stalling(first: &'static [u8]) -> (tokio::sync::mpsc::Sender<Bytes>, axum::body::Body) {
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
        let head = futures_util::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(first))]);
        let rest = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|b| (Ok(b), rx))
        });
        use futures_util::StreamExt;
        (tx, axum::body::Body::from_stream(head.chain(rest)))
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_body_fails_after_the_idle_timeout() {
        let (_tx, body) = stalling(b"part");
        let started = Instant::now();
        let err = IdleBody::new(body, Duration::from_secs(10))
            .collect()
            .await
            .expect_err("the stalled body fails");
        assert_eq!(started.elapsed(), Duration::from_secs(10));
        let idle = idle_timeout(err.as_ref()).expect("a BodyIdle");
        assert_eq!(idle.problem().status, 408);
    }

    #[tokio::test(start_paused = true)]
    async fn every_chunk_restarts_the_clock() {
        let (tx, body) = stalling(b"a");
        tokio::spawn(async move {
            for _ in 0..5 {
                tokio::time::sleep(Duration::from_secs(8)).await;
                tx.send(Bytes::from_static(b"b")).await.unwrap();
            }
            // Dropping the sender ends the body.
        });
        let got = IdleBody::new(body, Duration::from_secs(10))
            .collect()
            .await
            .expect("a slow but steady body is read to its end")
            .to_bytes();
        assert_eq!(&got[..], b"abbbbb");
    }
}
