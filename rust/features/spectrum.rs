//! Per-frame spectra: unpacking two real frames from one complex FFT, and every spectral
//! statistic of a power spectrum in one pass over its bins.

use std::sync::OnceLock;

use rustfft::num_complex::Complex;

use super::stft::{FrameStats, BIN_HZ, N_BINS, N_FFT};

/// Band of the syllable envelope (bins of 40 Hz): 300 Hz ..= 3000 Hz.
const BAND_BINS: std::ops::RangeInclusive<usize> = 8..=75;

/// Bin frequencies and their squares, in groups of four bins (the last bin separately).
struct BinTables {
    f: [[f64; 4]; N_BINS / 4],
    f2: [[f64; 4]; N_BINS / 4],
}

fn bin_tables() -> &'static BinTables {
    static TABLES: OnceLock<BinTables> = OnceLock::new();
    TABLES.get_or_init(|| {
        let f = std::array::from_fn(|g| std::array::from_fn(|l| (4 * g + l) as f64 * BIN_HZ));
        let f2 = std::array::from_fn(|g: usize| {
            std::array::from_fn(|l| {
                let v = (4 * g + l) as f64 * BIN_HZ;
                v * v
            })
        });
        BinTables { f, f2 }
    })
}

#[inline(always)]
pub(super) fn add4(a: [f64; 4]) -> f64 {
    (a[0] + a[1]) + (a[2] + a[3])
}

const MANTISSA_BITS: u64 = 0x000f_ffff_ffff_ffff;
const ONE_BITS: u64 = 0x3ff0_0000_0000_0000;

/// Power spectra of the two real frames packed in `z` (frame a in the real parts, b in the
/// imaginary parts): with `Z` the FFT of `a + i b`, `A[k] = (Z[k] + conj Z[N-k]) / 2` and
/// `B[k] = (Z[k] - conj Z[N-k]) / 2i`.
#[inline(always)]
pub(super) fn unpack_pair(z: &[Complex<f64>], power: &mut [[f64; N_BINS]; 2]) {
    let [pa, pb] = power;
    let edge = |zk: Complex<f64>, zn: Complex<f64>| {
        let (a, b) = (zk + zn.conj(), zk - zn.conj());
        (
            0.25 * (a.re * a.re + a.im * a.im),
            0.25 * (b.re * b.re + b.im * b.im),
        )
    };
    (pa[0], pb[0]) = edge(z[0], z[0]);
    (pa[N_BINS - 1], pb[N_BINS - 1]) = edge(z[N_BINS - 1], z[N_BINS - 1]);
    let lo = &z[1..N_BINS - 1];
    let hi = &z[N_BINS..N_FFT];
    for (((zk, zn), a), b) in lo
        .iter()
        .zip(hi.iter().rev())
        .zip(&mut pa[1..N_BINS - 1])
        .zip(&mut pb[1..N_BINS - 1])
    {
        // zn is conjugated: (zk + conj zn) = (zk.re + zn.re, zk.im - zn.im).
        let (ar, ai) = (zk.re + zn.re, zk.im - zn.im);
        let (br, bi) = (zk.re - zn.re, zk.im + zn.im);
        *a = 0.25 * (ar * ar + ai * ai);
        *b = 0.25 * (br * br + bi * bi);
    }
}

/// Spectral statistics of one power spectrum in a single pass over the bins.
#[inline(always)]
pub(super) fn spectral_stats(power: &[f64; N_BINS], st: &mut FrameStats) {
    let t = bin_tables();
    let (mut s_m, mut s_mf, mut s_mf2, mut s_p) = ([0.0; 4], [0.0; 4], [0.0; 4], [0.0; 4]);
    // Product of the floored powers as (mantissa product, exponent sum) so that ln is
    // taken once per lane; mantissas lie in [1, 2), so 64 of them cannot overflow.
    let (mut prod, mut exps) = ([1.0f64; 4], [0i64; 4]);
    let groups = power[..N_BINS - 1].chunks_exact(4);
    for (g, p) in groups.enumerate() {
        for l in 0..4 {
            let m = p[l].sqrt();
            s_m[l] += m;
            s_mf[l] += m * t.f[g][l];
            s_mf2[l] += m * t.f2[g][l];
            let floored = p[l].max(1e-10);
            s_p[l] += floored;
            let bits = floored.to_bits();
            exps[l] += (bits >> 52) as i64;
            prod[l] *= f64::from_bits((bits & MANTISSA_BITS) | ONE_BITS);
        }
        if g % 32 == 31 {
            for l in 0..4 {
                let bits = prod[l].to_bits();
                exps[l] += (bits >> 52) as i64 - 1023;
                prod[l] = f64::from_bits((bits & MANTISSA_BITS) | ONE_BITS);
            }
        }
    }
    let last = power[N_BINS - 1];
    let f_last = (N_BINS - 1) as f64 * BIN_HZ;
    let m_last = last.sqrt();
    let mag_sum = add4(s_m) + m_last;
    (st.centroid, st.spread) = if mag_sum > f64::MIN_POSITIVE {
        let c = (add4(s_mf) + m_last * f_last) / mag_sum;
        let second = (add4(s_mf2) + m_last * f_last * f_last) / mag_sum;
        (c, (second - c * c).max(0.0).sqrt())
    } else {
        (0.0, 0.0)
    };
    let mut band = [0.0; 4];
    for p in power[BAND_BINS].chunks_exact(4) {
        for l in 0..4 {
            band[l] += p[l];
        }
    }
    st.band_energy = add4(band);
    let floored_last = last.max(1e-10);
    let exp_sum = exps.iter().sum::<i64>() - 1023 * (N_BINS as i64 - 1);
    let ln_sum = exp_sum as f64 * std::f64::consts::LN_2
        + prod.iter().map(|v| v.ln()).sum::<f64>()
        + floored_last.ln();
    let mean_power = (add4(s_p) + floored_last) / N_BINS as f64;
    st.flatness = (ln_sum / N_BINS as f64).exp() / mean_power;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flatness_matches_direct_logs_for_tiny_and_huge_powers() {
        let mut power = [0.0; N_BINS];
        for (k, p) in power.iter_mut().enumerate() {
            *p = match k % 5 {
                0 => 0.0,
                1 => 3.0e-11,
                2 => 2.5e80,
                3 => 1.0 + k as f64,
                _ => 7.0e-5,
            };
        }
        let mut st = FrameStats::default();
        spectral_stats(&power, &mut st);
        let floored: Vec<f64> = power.iter().map(|p| p.max(1e-10)).collect();
        let mean_ln = floored.iter().map(|p| p.ln()).sum::<f64>() / N_BINS as f64;
        let mean = floored.iter().sum::<f64>() / N_BINS as f64;
        let want = mean_ln.exp() / mean;
        assert!(
            (st.flatness - want).abs() <= 1e-12 * want,
            "{} {want}",
            st.flatness
        );
        let mags: Vec<f64> = power.iter().map(|p| p.sqrt()).collect();
        let total: f64 = mags.iter().sum();
        let c: f64 = mags
            .iter()
            .enumerate()
            .map(|(k, m)| m * k as f64 * BIN_HZ)
            .sum::<f64>()
            / total;
        let spread = (mags
            .iter()
            .enumerate()
            .map(|(k, m)| m * (k as f64 * BIN_HZ - c).powi(2))
            .sum::<f64>()
            / total)
            .sqrt();
        assert!((st.centroid - c).abs() <= 1e-9 * c);
        assert!((st.spread - spread).abs() <= 1e-9 * spread);
    }
}
