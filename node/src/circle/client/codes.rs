//! The person's code and duress code ([`Codes`], hashed in the circle
//! store): setting, changing and removing them, and [`CircleClient::unlock`],
//! which the journey's end and the SOS's cancel call. Without codes nothing
//! is asked; once set, one of the two is needed, and the duress code makes
//! the journey or SOS seem ended while the alert goes on
//! (`docs/circle.md` §9).
//!
//! Nothing here logs which code was entered.

use rand::rngs::OsRng;
use ronde_protocol::circle::{CodeCheck, CodeError, Codes};

use super::store::{keys, Commit};
use super::{storage, CircleClient};
use crate::circle::views::CodesView;
use crate::error::{CircleRefusal, NodeError};

fn refusal(r: CircleRefusal) -> NodeError {
    NodeError::Circle(r)
}

impl CircleClient {
    /// Which code was entered: always [`CodeCheck::Code`] while no codes
    /// are set; otherwise `code` is required and must be one of the two.
    pub(super) fn unlock(&self, code: Option<&str>) -> Result<CodeCheck, NodeError> {
        let Some(codes) = &self.codes else {
            return Ok(CodeCheck::Code);
        };
        let Some(code) = code else {
            return Err(refusal(CircleRefusal::CodeRequired));
        };
        match codes.check(code) {
            CodeCheck::Wrong => Err(refusal(CircleRefusal::WrongCode)),
            c => Ok(c),
        }
    }

    /// Set the code and the duress code. Changing them needs the current
    /// (real) code: the duress code cannot change them.
    pub(super) fn set_codes(
        &mut self,
        code: &str,
        duress: &str,
        current: Option<&str>,
    ) -> Result<CodesView, NodeError> {
        if self.codes.is_some() && self.unlock(current)? != CodeCheck::Code {
            return Err(refusal(CircleRefusal::WrongCode));
        }
        let codes = Codes::new(code, duress, &mut OsRng).map_err(|e| {
            refusal(CircleRefusal::BadCode(match e {
                CodeError::BadCode | CodeError::Same => e.to_string(),
            }))
        })?;
        let mut commit = Commit::new();
        commit.put(keys::CODES, &codes).map_err(storage)?;
        self.store.apply(commit).map_err(storage)?;
        self.codes = Some(codes);
        Ok(CodesView { codes: true })
    }

    /// Remove both codes (with the real code).
    pub(super) fn clear_codes(&mut self, current: &str) -> Result<CodesView, NodeError> {
        if self.codes.is_some() && self.unlock(Some(current))? != CodeCheck::Code {
            return Err(refusal(CircleRefusal::WrongCode));
        }
        let mut commit = Commit::new();
        commit.delete(keys::CODES);
        self.store.apply(commit).map_err(storage)?;
        self.codes = None;
        Ok(CodesView { codes: false })
    }

    /// Whether codes are set.
    pub(super) fn has_codes(&self) -> bool {
        self.codes.is_some()
    }
}
