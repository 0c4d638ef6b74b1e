//! Asynchronous name resolution: lookups run on worker threads, never on the event loop.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};

use crate::select::Token;

/// How many lookups may run at once. A slow name server delays only the lookups queued behind it
/// on the same worker, never the event loop.
const WORKERS: usize = 4;

struct Job {
    token: Token,
    host: String,
    port: u16,
}

/// The result of one lookup, tagged with the token of the connection attempt that asked.
pub(crate) struct Answer {
    pub(crate) token: Token,
    pub(crate) result: io::Result<Vec<SocketAddr>>,
}

/// A pool of resolver threads, started on first use and stopped when dropped.
pub(crate) struct Resolver {
    jobs: Sender<Job>,
    answers: Receiver<Answer>,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver").finish_non_exhaustive()
    }
}

impl Resolver {
    pub(crate) fn start() -> io::Result<Resolver> {
        let (jobs, job_rx) = mpsc::channel::<Job>();
        let (answer_tx, answers) = mpsc::channel();
        let job_rx = Arc::new(Mutex::new(job_rx));
        for i in 0..WORKERS {
            let job_rx = Arc::clone(&job_rx);
            let answer_tx = answer_tx.clone();
            std::thread::Builder::new()
                .name(format!("hotwire-dns-{i}"))
                .spawn(move || loop {
                    // The lock is held only while taking a job, not during the lookup.
                    let job = match job_rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    let Ok(job) = job else { return };
                    let result = (job.host.as_str(), job.port)
                        .to_socket_addrs()
                        .map(|a| a.collect::<Vec<_>>())
                        .and_then(|a| {
                            if a.is_empty() {
                                Err(io::Error::new(
                                    io::ErrorKind::NotFound,
                                    format!("{} has no address", job.host),
                                ))
                            } else {
                                Ok(a)
                            }
                        })
                        .map_err(|e| {
                            io::Error::new(e.kind(), format!("resolve {}: {e}", job.host))
                        });
                    if answer_tx
                        .send(Answer {
                            token: job.token,
                            result,
                        })
                        .is_err()
                    {
                        return;
                    }
                })?;
        }
        Ok(Resolver { jobs, answers })
    }

    pub(crate) fn submit(&self, token: Token, host: &str, port: u16) -> io::Result<()> {
        self.jobs
            .send(Job {
                token,
                host: host.to_owned(),
                port,
            })
            .map_err(|_| io::Error::other("resolver threads have stopped"))
    }

    pub(crate) fn try_answer(&self) -> Option<Answer> {
        self.answers.try_recv().ok()
    }
}
