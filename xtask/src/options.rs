//! The options every grading command shares, `--seed` and `--time-scale`,
//! parsed and checked in one place: a bad value is a usage error (exit 2)
//! before anything is built or run, in `grade`, `watch`, `verify`, `soak`,
//! `grade-class` and `bench` alike.

use clap::Args;
use grader::Options;

/// `--seed` and `--time-scale`.
#[derive(Debug, Clone, Args)]
pub struct RunOptions {
    /// Seed for every random payload, to replay a run exactly (default: a
    /// fresh seed for every grade).
    #[arg(long, allow_negative_numbers = true, value_parser = parse_seed)]
    pub seed: Option<u64>,
    /// Multiply every time limit and scenario pause (for a slow machine): a
    /// number above 0, at most 100.
    #[arg(
        long,
        default_value_t = 1.0,
        allow_negative_numbers = true,
        value_parser = parse_time_scale
    )]
    pub time_scale: f64,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            seed: None,
            time_scale: 1.0,
        }
    }
}

impl RunOptions {
    /// The grader's options for one grade of `graded`: the given seed, or a
    /// fresh one.
    pub fn grader_options(&self, graded: impl Into<String>) -> Options {
        Options {
            seed: self.seed.unwrap_or_else(grader::runner::fresh_seed),
            time_scale: self.time_scale,
            graded: graded.into(),
            ..Options::default()
        }
    }

    /// The same options as `cargo xtask grade` arguments, for commands that
    /// grade through it (the bench).
    pub fn to_args(&self) -> Vec<String> {
        let mut args = vec!["--time-scale".to_owned(), self.time_scale.to_string()];
        if let Some(seed) = self.seed {
            args.extend(["--seed".to_owned(), seed.to_string()]);
        }
        args
    }
}

/// A seed: any whole number from 0 to 2^64 - 1, as the report prints it.
fn parse_seed(text: &str) -> Result<u64, String> {
    text.trim().parse().map_err(|_| {
        format!(
            "`{text}` is not a seed: a whole number from 0 to {}",
            u64::MAX
        )
    })
}

/// The largest `--time-scale`: ten times the slowest machine we know of,
/// and far below the point where a scaled limit would overflow.
const MAX_TIME_SCALE: f64 = 100.0;

/// A time scale: a finite number above 0, at most [`MAX_TIME_SCALE`].
fn parse_time_scale(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(scale) if scale > 0.0 && scale <= MAX_TIME_SCALE => Ok(scale),
        _ => Err(format!(
            "`{text}` is not a time scale: a number above 0, at most {MAX_TIME_SCALE}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_scales_above_zero_up_to_the_limit_are_accepted() {
        for good in ["1", "0.5", "2.5", "100", " 3 "] {
            assert!(parse_time_scale(good).is_ok(), "{good}");
        }
        for bad in [
            "0", "-1", "-0", "nan", "NaN", "inf", "-inf", "1e300", "100.01", "", "x",
        ] {
            assert!(parse_time_scale(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn seeds_are_whole_numbers_that_fit_in_64_bits() {
        assert_eq!(parse_seed("0"), Ok(0));
        assert_eq!(parse_seed(&u64::MAX.to_string()), Ok(u64::MAX));
        for bad in ["-1", "1.5", "18446744073709551616", "", "seed"] {
            assert!(parse_seed(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_bench_passes_the_options_on_as_grade_arguments() {
        let options = RunOptions {
            seed: Some(7),
            time_scale: 2.5,
        };
        assert_eq!(options.to_args(), ["--time-scale", "2.5", "--seed", "7"]);
    }
}
