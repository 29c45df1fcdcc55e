//! The technician's PIN: a login that hands out session tokens, and a lockout against guessing,
//! per client address: anyone on the pitch's network can lock out their own address, not the
//! technician's phone. A budget of wrong PINs over all addresses stops a guesser who changes
//! address (100 an hour: a 6-digit PIN then takes years on average).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a session lasts.
const SESSION: Duration = Duration::from_secs(12 * 3600);
/// Wrong PINs allowed before a lockout.
const ATTEMPTS: u32 = 5;
/// How long a lockout lasts.
const LOCKOUT: Duration = Duration::from_secs(60);
/// Client addresses whose failures are remembered; past this, those without a recent failure
/// are forgotten.
const MAX_CLIENTS: usize = 4096;
/// Wrong PINs from all addresses together within an hour before every login waits.
const GLOBAL_FAILURES_PER_HOUR: usize = 100;
const HOUR: Duration = Duration::from_secs(3600);

/// Why a login failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginError {
    /// Wrong PIN.
    Wrong,
    /// Too many wrong PINs; try again after this many seconds.
    Locked(u64),
    /// No randomness for a token (should not happen on Linux).
    NoRandom,
}

#[derive(Debug)]
struct Failures {
    count: u32,
    locked_until: Option<Instant>,
    last: Instant,
}

#[derive(Debug, Default)]
struct Guesses {
    by_client: HashMap<IpAddr, Failures>,
    /// Times of the wrong PINs of the last hour, from every address.
    recent: VecDeque<Instant>,
}

/// PIN check and sessions.
#[derive(Debug)]
pub struct Auth {
    pin: String,
    sessions: Mutex<HashMap<String, Instant>>,
    failures: Mutex<Guesses>,
}

/// Compares without an early exit, so the time taken does not reveal how much of a guess was
/// right.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Auth {
    /// Guards with `pin`.
    pub fn new(pin: String) -> Self {
        Auth {
            pin,
            sessions: Mutex::new(HashMap::new()),
            failures: Mutex::new(Guesses::default()),
        }
    }

    /// Exchanges the PIN, sent from `client`, for a session token.
    pub fn login(&self, client: IpAddr, pin: &str) -> Result<String, LoginError> {
        let now = Instant::now();
        let mut guesses = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let Guesses { by_client, recent } = &mut *guesses;
        while recent
            .front()
            .is_some_and(|t| now.duration_since(*t) > HOUR)
        {
            recent.pop_front();
        }
        if recent.len() >= GLOBAL_FAILURES_PER_HOUR
            && let Some(oldest) = recent.front()
        {
            let wait = HOUR.saturating_sub(now.duration_since(*oldest));
            return Err(LoginError::Locked(wait.as_secs() + 1));
        }
        if by_client.len() >= MAX_CLIENTS && !by_client.contains_key(&client) {
            by_client.retain(|_, f| {
                f.locked_until.is_some_and(|until| until > now) || now.duration_since(f.last) < HOUR
            });
        }
        let failures = by_client.entry(client).or_insert(Failures {
            count: 0,
            locked_until: None,
            last: now,
        });
        if let Some(until) = failures.locked_until {
            if until > now {
                return Err(LoginError::Locked((until - now).as_secs() + 1));
            }
            failures.locked_until = None;
            failures.count = 0;
        }
        if !same(pin.trim().as_bytes(), self.pin.as_bytes()) {
            failures.count += 1;
            failures.last = now;
            recent.push_back(now);
            if recent.len() == GLOBAL_FAILURES_PER_HOUR {
                tracing::warn!(
                    "{GLOBAL_FAILURES_PER_HOUR} wrong technician PINs within an hour from all addresses: logins wait"
                );
            }
            if failures.count >= ATTEMPTS {
                failures.locked_until = Some(now + LOCKOUT);
                tracing::warn!(
                    %client,
                    "technician login locked for {} s for this address after {ATTEMPTS} wrong PINs",
                    LOCKOUT.as_secs()
                );
            }
            return Err(LoginError::Wrong);
        }
        by_client.remove(&client);
        drop(guesses);
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|_| LoginError::NoRandom)?;
        let token = crate::calibration::hex(&bytes);
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        sessions.retain(|_, expiry| *expiry > now);
        sessions.insert(token.clone(), now + SESSION);
        Ok(token)
    }

    /// Whether an `Authorization: Bearer …` value carries a live session.
    pub fn check(&self, authorization: Option<&str>) -> bool {
        let Some(token) = authorization.and_then(|h| h.strip_prefix("Bearer ")) else {
            return false;
        };
        let sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        sessions.iter().any(|(t, expiry)| {
            same(t.as_bytes(), token.trim().as_bytes()) && *expiry > Instant::now()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PHONE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 10));
    const GUESSER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 66));

    #[test]
    fn the_pin_opens_a_session_and_guessing_locks_out() {
        let auth = Auth::new("482913".into());
        assert!(!auth.check(None));
        let token = auth.login(PHONE, "482913").expect("login");
        assert!(auth.check(Some(&format!("Bearer {token}"))));
        assert!(!auth.check(Some("Bearer 00")));
        assert!(!auth.check(Some(&token)), "the scheme is required");
        for _ in 0..ATTEMPTS {
            assert_eq!(auth.login(PHONE, "000000"), Err(LoginError::Wrong));
        }
        assert!(matches!(
            auth.login(PHONE, "482913"),
            Err(LoginError::Locked(_))
        ));
        // Sessions opened before the lockout stay valid.
        assert!(auth.check(Some(&format!("Bearer {token}"))));
    }

    /// Finding (the technician's page): the lockout was global, so anyone on the pitch's
    /// network locked the technician out with five wrong PINs.
    #[test]
    fn a_guesser_locks_out_only_its_own_address() {
        let auth = Auth::new("482913".into());
        for _ in 0..ATTEMPTS {
            assert_eq!(auth.login(GUESSER, "000000"), Err(LoginError::Wrong));
        }
        assert!(matches!(
            auth.login(GUESSER, "482913"),
            Err(LoginError::Locked(_))
        ));
        let token = auth
            .login(PHONE, "482913")
            .expect("the technician still logs in");
        assert!(auth.check(Some(&format!("Bearer {token}"))));
    }

    /// Rotating addresses does not buy unlimited guesses: past the hourly budget of wrong
    /// PINs over all addresses, every login waits.
    #[test]
    fn a_guesser_changing_address_meets_the_global_budget() {
        let auth = Auth::new("482913".into());
        for i in 0..GLOBAL_FAILURES_PER_HOUR {
            let address = IpAddr::V4(std::net::Ipv4Addr::new(
                10,
                0,
                (i / 250) as u8,
                (i % 250) as u8,
            ));
            assert_eq!(auth.login(address, "000000"), Err(LoginError::Wrong));
        }
        assert!(matches!(
            auth.login(GUESSER, "111111"),
            Err(LoginError::Locked(_))
        ));
    }
}
