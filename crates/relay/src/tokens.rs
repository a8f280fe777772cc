//! The relay's token issuer (`docs/protocol.md` §8.5): one blind-RSA key
//! per UTC day, the current and the next (their public keys go into the
//! signed directory), and the answer to an issuance request
//! (`ronde_protocol::token::IssueRequest`) from an issuance **identity**
//! under a pluggable [`IssuancePolicy`].
//!
//! The policy of tests and the demo is [`PowQuota`]: a proof of work over
//! the request (about 10 s on a phone at difficulty 25) and at most N
//! tokens per identity (a connection) per period. Real deployments put
//! device attestation behind the same trait (docs/operator-guide.md).
//!
//! What the issuer keeps ([`TokenIssuer::records`]): per identity and
//! period, how many tokens it signed. Never the blinded messages, the
//! blind signatures or anything of a token: a token it later meets in a
//! report shares no byte with what it saw and cannot be matched to the
//! identity that received it.

use std::collections::{BTreeMap, HashMap};

use rand::rngs::OsRng;
use ronde_protocol::token::{
    period_of, IssueRequest, IssueResponse, Issuer, TokenError, TokenKey, PERIOD_SECS,
    TOKENS_PER_PERIOD,
};

/// Difficulty of the issuance proof of work of the demo: 2^25 SHA-256,
/// about 10 s on a phone core at 2.5–3 M hashes/s (2 s on this project's
/// reference machine).
pub const DEFAULT_ISSUE_DIFFICULTY: u8 = 25;

/// Who asks for tokens, as the policy knows it: a connection (peer id and
/// connection id) for [`PowQuota`], an attested device for attestation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Identity(pub String);

/// A policy's verdict on one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Sign the request's messages.
    Granted,
    /// The proof does not hold.
    Refused,
    /// This identity had its N tokens of the period.
    QuotaUsed,
}

/// Who may have tokens: the extension point of issuance. `admit` is asked
/// once per request, before anything is signed, with the identity the
/// transport vouches for, the request and its period; a grant counts the
/// request's tokens against the identity.
pub trait IssuancePolicy: Send {
    /// Whether `identity` may have the tokens `request` asks for in the
    /// period that starts at `period`.
    fn admit(&mut self, identity: &Identity, request: &IssueRequest, period: u64) -> Admission;
}

/// The proof of work an issuance request carries under [`PowQuota`]
/// (defined with the token format: `ronde_protocol::token`).
pub use ronde_protocol::token::{
    issue_work_holds, issue_work_prefix, solve_issue_work, ISSUE_POW_DOMAIN,
};

/// Proof of work per batch plus at most `per_period` tokens per identity
/// per period: the policy of tests and the demo.
pub struct PowQuota {
    difficulty: u8,
    per_period: u8,
    used: HashMap<(Identity, u64), u8>,
}

impl PowQuota {
    /// A policy demanding `difficulty` bits per request and granting at
    /// most `per_period` tokens per identity per period.
    pub fn new(difficulty: u8, per_period: u8) -> PowQuota {
        PowQuota {
            difficulty,
            per_period,
            used: HashMap::new(),
        }
    }
}

impl IssuancePolicy for PowQuota {
    fn admit(&mut self, identity: &Identity, request: &IssueRequest, period: u64) -> Admission {
        if !issue_work_holds(request, self.difficulty) {
            return Admission::Refused;
        }
        // Forget the counts of periods that ended.
        self.used.retain(|(_, p), _| *p >= period);
        let used = self.used.entry((identity.clone(), period)).or_insert(0);
        let asked = u8::try_from(request.blinded.len()).unwrap_or(u8::MAX);
        if used.saturating_add(asked) > self.per_period {
            return Admission::QuotaUsed;
        }
        *used += asked;
        Admission::Granted
    }
}

/// How many tokens an identity received in a period: all the issuer
/// remembers of an issuance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuanceRecord {
    /// Who received them.
    pub identity: Identity,
    /// The period's start.
    pub period: u64,
    /// How many.
    pub count: u32,
}

/// The keys of the current and next periods and the policy.
pub struct TokenIssuer {
    keys: BTreeMap<u64, Issuer>,
    policy: Box<dyn IssuancePolicy>,
    records: BTreeMap<(Identity, u64), u32>,
    /// Where the keys are kept (`<period>.der`, PKCS#8, mode 0600), if
    /// anywhere: a restarted relay must sign with the keys its directory
    /// already listed, or the tokens it issued before are refused.
    dir: Option<std::path::PathBuf>,
}

impl TokenIssuer {
    /// An issuer with no key yet, under `policy`.
    pub fn new(policy: Box<dyn IssuancePolicy>) -> TokenIssuer {
        TokenIssuer {
            keys: BTreeMap::new(),
            policy,
            records: BTreeMap::new(),
            dir: None,
        }
    }

    /// An issuer that keeps its keys in `dir`, loading those there (a
    /// file that does not parse is skipped and left for the operator).
    pub fn with_key_dir(
        policy: Box<dyn IssuancePolicy>,
        dir: &std::path::Path,
    ) -> std::io::Result<TokenIssuer> {
        std::fs::create_dir_all(dir)?;
        let mut t = TokenIssuer::new(policy);
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            let period = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".der"))
                .and_then(|p| p.parse::<u64>().ok());
            let Some(period) = period else { continue };
            match std::fs::read(&path)
                .ok()
                .and_then(|der| Issuer::from_der(period, &der).ok())
            {
                Some(issuer) => t.insert_key(issuer),
                None => tracing::warn!(path = %path.display(), "a token key file does not parse"),
            }
        }
        t.dir = Some(dir.to_owned());
        Ok(t)
    }

    fn save(&self, issuer: &Issuer) -> Result<(), TokenError> {
        let Some(dir) = &self.dir else {
            return Ok(());
        };
        let der = issuer.to_der()?;
        let path = dir.join(format!("{}.der", issuer.key().period_start()));
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let write = |opts: &std::fs::OpenOptions| -> std::io::Result<()> {
            use std::io::Write;
            let mut f = opts.open(&path)?;
            f.write_all(&der)?;
            f.sync_all()
        };
        write(&opts).map_err(|_| TokenError::Crypto)
    }

    fn forget(&self, period: u64) {
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_file(dir.join(format!("{period}.der")));
        }
    }

    /// Replace the policy (counts of the old one are dropped).
    pub fn set_policy(&mut self, policy: Box<dyn IssuancePolicy>) {
        self.policy = policy;
    }

    /// Hold a key made elsewhere (loaded from storage, or a test key).
    pub fn insert_key(&mut self, issuer: Issuer) {
        self.keys.insert(issuer.key().period_start(), issuer);
    }

    /// Make sure the keys of the period of `now` and the next exist
    /// (generating what is missing: an RSA-2048 prime search, about a
    /// second), and drop older ones. Returns whether the set changed (the
    /// directory must then be re-signed).
    pub fn rotate(&mut self, now: u64) -> Result<bool, TokenError> {
        let current = period_of(now);
        let before: Vec<u64> = self.keys.keys().copied().collect();
        for p in before.iter().filter(|p| **p < current) {
            self.forget(*p);
        }
        self.keys.retain(|p, _| *p >= current);
        for p in [current, current + PERIOD_SECS] {
            if !self.keys.contains_key(&p) {
                let issuer = Issuer::generate(p, &mut OsRng)?;
                self.save(&issuer)?;
                self.keys.insert(p, issuer);
            }
        }
        self.records.retain(|(_, p), _| *p >= current);
        Ok(self.keys.keys().copied().collect::<Vec<_>>() != before)
    }

    /// The public keys to list in the directory, by period.
    pub fn token_keys(&self) -> Vec<TokenKey> {
        self.keys.values().map(|i| i.key().clone()).collect()
    }

    /// Answer one request (its bytes as received) from `identity` at `now`:
    /// the response's bytes. Tokens are issued for the current period only
    /// (the next period's key is listed ahead so that nodes hold it at
    /// midnight, but its tokens are issued from midnight on).
    pub fn handle(&mut self, identity: &Identity, request: &[u8], now: u64) -> Vec<u8> {
        match IssueRequest::from_bytes(request) {
            Ok(request) => self.answer(identity, &request, now).to_bytes(),
            Err(_) => IssueResponse::Refused.to_bytes(),
        }
    }

    /// Answer one well-formed request from `identity` at `now`.
    pub fn answer(
        &mut self,
        identity: &Identity,
        request: &IssueRequest,
        now: u64,
    ) -> IssueResponse {
        let period = period_of(now);
        let Some(issuer) = self
            .keys
            .get(&period)
            .filter(|i| i.key().key_id() == request.key_id)
        else {
            return IssueResponse::UnknownKey;
        };
        match self.policy.admit(identity, request, period) {
            Admission::Granted => {}
            Admission::Refused => return IssueResponse::Refused,
            Admission::QuotaUsed => return IssueResponse::QuotaUsed,
        }
        let mut sigs = Vec::with_capacity(request.blinded.len());
        for m in &request.blinded {
            match issuer.sign(m) {
                Ok(s) => sigs.push(s),
                Err(_) => return IssueResponse::Unavailable,
            }
        }
        *self.records.entry((identity.clone(), period)).or_insert(0) +=
            u32::try_from(sigs.len()).unwrap_or(u32::MAX);
        tracing::debug!(tokens = sigs.len(), "tokens issued");
        IssueResponse::Issued(sigs)
    }

    /// Everything the issuer keeps about issuances.
    pub fn records(&self) -> Vec<IssuanceRecord> {
        self.records
            .iter()
            .map(|((identity, period), count)| IssuanceRecord {
                identity: identity.clone(),
                period: *period,
                count: *count,
            })
            .collect()
    }
}

/// N, re-exported for configuration.
pub const TOKENS_PER_IDENTITY: u8 = TOKENS_PER_PERIOD;
