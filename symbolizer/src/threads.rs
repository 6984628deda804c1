//! Starting a scoped thread for work that the calling thread can also do.

use std::sync::mpsc;
use std::thread::{Builder, Scope, ScopedJoinHandle};

/// Starts a thread named `name` in `scope` that runs `run` on `work`.
///
/// The work travels to the thread through a channel, so that when the
/// thread cannot start, the work comes back as the error and the caller
/// can do it itself. The thread's result is `None` only if the work never
/// arrived, which cannot happen once this returns `Ok`.
pub fn spawn_or_return<'scope, T, R, F>(
    scope: &'scope Scope<'scope, '_>,
    name: &str,
    work: T,
    run: F,
) -> Result<ScopedJoinHandle<'scope, Option<R>>, T>
where
    T: Send + 'scope,
    R: Send + 'scope,
    F: FnOnce(T) -> R + Send + 'scope,
{
    let (sender, receiver) = mpsc::channel::<T>();
    let spawned = Builder::new()
        .name(name.to_owned())
        .spawn_scoped(scope, move || receiver.recv().ok().map(run));
    match spawned {
        Ok(handle) => match sender.send(work) {
            Ok(()) => Ok(handle),
            Err(unsent) => Err(unsent.0),
        },
        Err(error) => {
            tracing::debug!(target: "symbolizer::threads", %error, name, "failed to start a thread, so the work stays on this one");
            Err(work)
        }
    }
}
