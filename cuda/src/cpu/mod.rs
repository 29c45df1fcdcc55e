//! The CPU references: the same functions as the kernels, integer for integer.
//!
//! Each splits its output into one contiguous band of rows per thread (`std::thread::scope`),
//! so every thread writes memory no other thread touches and reads its table rows in order.

pub mod preprocess;
pub mod stitch;

/// How many threads a call uses: the machine's parallelism unless set.
pub(crate) fn threads(requested: Option<usize>) -> usize {
    requested
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1)
}
