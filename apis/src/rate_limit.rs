//! Requests per second per token (and per client address for requests
//! without a token, such as logins), with governor's GCRA limiter.

use std::net::IpAddr;
use std::num::NonZeroU32;

use governor::{DefaultKeyedRateLimiter, Quota};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RateKey {
    Token(Vec<u8>),
    Address(IpAddr),
}

pub struct RateLimits {
    limiter: DefaultKeyedRateLimiter<RateKey>,
}

impl RateLimits {
    /// `per_second` sustained, bursts of twice that.
    pub fn new(per_second: u32) -> Self {
        let rate = NonZeroU32::new(per_second.max(1)).expect("at least one");
        let burst = NonZeroU32::new(per_second.max(1).saturating_mul(2)).expect("at least one");
        Self {
            limiter: DefaultKeyedRateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)),
        }
    }

    /// True when the request may go on.
    pub fn allow(&self, key: &RateKey) -> bool {
        self.limiter.check_key(key).is_ok()
    }

    /// Forgets keys whose quota has fully recovered (bounded memory).
    pub fn forget_idle(&self) {
        self.limiter.retain_recent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_cut_off_after_its_burst_and_others_are_not() {
        let limits = RateLimits::new(5);
        let a = RateKey::Token(vec![1]);
        let b = RateKey::Token(vec![2]);
        let allowed = (0..50).filter(|_| limits.allow(&a)).count();
        assert!((10..=11).contains(&allowed), "allowed {allowed}");
        assert!(limits.allow(&b));
    }
}
