//! One file per phase, oldest first. Each opens with what changed since the
//! phase before it, why, and what it costs.

mod p3_1_1_batch_limit;
mod p3_1_2_adaptive_sleep;
mod p3_1_3_condvar_wake;
mod p3_1_4_two_phase;
mod p3_1_5_swap_buffer;
mod p3_2_1_epoll_wake;
mod p3_3_1_lock_free;

pub use p3_1_1_batch_limit::{BatchLimitQueue, POLL_INTERVAL};
pub use p3_1_2_adaptive_sleep::{AdaptiveSleepQueue, Backoff};
pub use p3_1_3_condvar_wake::CondvarWakeQueue;
pub use p3_1_4_two_phase::TwoPhaseQueue;
pub use p3_1_5_swap_buffer::SwapBufferQueue;
pub use p3_2_1_epoll_wake::{EpollConsumer, EpollWakeQueue};
#[cfg(loom)]
#[doc(hidden)]
pub use p3_3_1_lock_free::Sabotage;
pub use p3_3_1_lock_free::{LockFreeConsumer, LockFreeQueue};
