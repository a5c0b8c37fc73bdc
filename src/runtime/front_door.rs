//! The front door: how every front end (HTTP, the native client protocol) hands a request to
//! the driver task and waits for the core's answer.
//!
//! # Guarantees
//! - Bounded: a full driver queue is refused at once ([`DoorError::Overloaded`]), never
//!   queued behind.
//! - After [`FrontDoor::stop_accepting`] (shutdown), nothing new reaches the core.
//! - A wait is bounded: a request's own deadline plus [`REPLY_GRACE`] (the core always answers
//!   by the deadline; the grace only guards against a stuck driver).

use super::driver::{DriverInput, InboxSender};
use ringstore_core::request::{ClientRequest, ClientResult};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::oneshot;

/// How long past a request's own deadline a front end waits for the core before it gives up.
pub const REPLY_GRACE: Duration = Duration::from_secs(1);

/// Why a request never got the core's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DoorError {
    /// The driver's queue is full.
    #[error("the node is overloaded")]
    Overloaded,
    /// The node is shutting down (or its driver stopped).
    #[error("the node is shutting down")]
    ShuttingDown,
    /// The core did not answer within the deadline plus the grace.
    #[error("the node's core did not answer in time")]
    CoreTimeout,
}

/// The way into one node's driver, shared by its front ends.
pub struct FrontDoor {
    inbox: InboxSender,
    accepting: AtomicBool,
    request_timeout: Duration,
}

impl FrontDoor {
    /// A door into the driver reading `inbox`; `request_timeout` is the core's default
    /// deadline (for requests that carry none).
    pub fn new(inbox: InboxSender, request_timeout: Duration) -> Self {
        Self {
            inbox,
            accepting: AtomicBool::new(true),
            request_timeout,
        }
    }

    /// Stops taking requests that need the core (they get [`DoorError::ShuttingDown`]).
    pub fn stop_accepting(&self) {
        self.accepting.store(false, Ordering::SeqCst);
    }

    /// Sends an input to the driver without waiting.
    pub fn submit(&self, input: DriverInput) -> Result<(), DoorError> {
        if !self.accepting.load(Ordering::SeqCst) {
            return Err(DoorError::ShuttingDown);
        }
        self.inbox.try_send(input).map_err(|error| match error {
            TrySendError::Full(_) => DoorError::Overloaded,
            TrySendError::Closed(_) => DoorError::ShuttingDown,
        })
    }

    /// Sends an input built around a oneshot and awaits the answer for at most `wait`.
    pub async fn ask<T>(
        &self,
        wait: Duration,
        make: impl FnOnce(oneshot::Sender<T>) -> DriverInput,
    ) -> Result<T, DoorError> {
        let (tx, rx) = oneshot::channel();
        self.submit(make(tx))?;
        match tokio::time::timeout(wait, rx).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(_)) => Err(DoorError::ShuttingDown), // the driver dropped the request
            Err(_) => Err(DoorError::CoreTimeout),
        }
    }

    /// Runs a client request through the core and waits for its answer.
    pub async fn request(&self, request: ClientRequest) -> Result<ClientResult, DoorError> {
        let timeout = request
            .timeout_ms
            .map_or(self.request_timeout, Duration::from_millis);
        self.ask(timeout + REPLY_GRACE, |reply| DriverInput::Client {
            request,
            reply,
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::mpsc::channel;

    // A full queue is refused at once, a stopped door refuses everything, and a dropped
    // reply reads as a shutdown.
    #[tokio::test]
    async fn refusals_are_immediate_and_named() {
        let (tx, mut rx) = channel(1);
        let door = FrontDoor::new(tx, Duration::from_millis(50));
        assert_eq!(door.submit(DriverInput::Shutdown), Ok(()));
        assert_eq!(
            door.submit(DriverInput::Shutdown),
            Err(DoorError::Overloaded)
        );
        drop(rx.try_recv().unwrap());
        // The driver takes the request and drops its reply sender.
        let answer = tokio::join!(door.request(ClientRequest::get(b"k".to_vec())), async {
            tokio::task::yield_now().await;
            drop(rx.try_recv());
        });
        assert_eq!(answer.0, Err(DoorError::ShuttingDown));
        door.stop_accepting();
        assert_eq!(
            door.submit(DriverInput::Shutdown),
            Err(DoorError::ShuttingDown)
        );
    }
}
