//! Following parameter changes inside an adapter task.

use tokio::sync::watch;

use crate::link::LinkParams;

/// Wraps a parameter receiver so that a closed channel (the handle is gone) just means "no more
/// changes" instead of a busy loop of errors.
pub(crate) struct ParamWatch {
    rx: watch::Receiver<LinkParams>,
    live: bool,
}

impl ParamWatch {
    pub(crate) fn new(mut rx: watch::Receiver<LinkParams>) -> ParamWatch {
        rx.mark_unchanged();
        ParamWatch { rx, live: true }
    }

    /// The parameters now.
    pub(crate) fn current(&mut self) -> LinkParams {
        self.rx.borrow_and_update().clone()
    }

    /// Waits for the next change (forever once the sender is gone). Cancel-safe.
    pub(crate) async fn changed(&mut self) -> LinkParams {
        if self.live && self.rx.changed().await.is_ok() {
            return self.rx.borrow_and_update().clone();
        }
        self.live = false;
        std::future::pending().await
    }
}
