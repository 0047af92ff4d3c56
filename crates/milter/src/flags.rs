//! The bit sets and stage numbers exchanged in option negotiation
//! (`SMFIC_OPTNEG`): actions the milter may take (`SMFIF_*`), protocol steps it
//! can skip or not answer (`SMFIP_*`), and the macro stages (`SMFIM_*`) its
//! symbol lists name.
//!
//! # Standards
//! Sendmail libmilter protocol version 6 (`include/libmilter/mfdef.h`, public
//! documentation of the protocol): the values here are the wire values.

use std::fmt;

/// `SMFIF_*`: modifications a milter may make, offered by us and requested by
/// the milter in `SMFIC_OPTNEG`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Actions(pub u32);

impl Actions {
    /// `SMFIF_ADDHDRS`: add (and insert) header fields.
    pub const ADD_HEADERS: Actions = Actions(0x01);
    /// `SMFIF_CHGBODY`: replace the body.
    pub const CHANGE_BODY: Actions = Actions(0x02);
    /// `SMFIF_ADDRCPT`: add recipients.
    pub const ADD_RCPT: Actions = Actions(0x04);
    /// `SMFIF_DELRCPT`: remove recipients.
    pub const DELETE_RCPT: Actions = Actions(0x08);
    /// `SMFIF_CHGHDRS`: change or delete header fields.
    pub const CHANGE_HEADERS: Actions = Actions(0x10);
    /// `SMFIF_QUARANTINE`: quarantine the message.
    pub const QUARANTINE: Actions = Actions(0x20);
    /// `SMFIF_CHGFROM`: change the envelope sender.
    pub const CHANGE_FROM: Actions = Actions(0x40);
    /// `SMFIF_ADDRCPT_PAR`: add recipients with ESMTP parameters.
    pub const ADD_RCPT_PAR: Actions = Actions(0x80);
    /// `SMFIF_SETSYMLIST`: the milter names the macros it wants per stage.
    pub const SET_SYMLIST: Actions = Actions(0x100);
    /// Everything this client implements (what it offers by default).
    pub const ALL: Actions = Actions(0x1FF);

    /// Whether every bit of `other` is set here.
    pub const fn contains(self, other: Actions) -> bool {
        self.0 & other.0 == other.0
    }

    /// The bits set in both.
    #[must_use]
    pub const fn intersection(self, other: Actions) -> Actions {
        Actions(self.0 & other.0)
    }

    /// The bits set here and not in `other`.
    #[must_use]
    pub const fn difference(self, other: Actions) -> Actions {
        Actions(self.0 & !other.0)
    }

    /// Whether no bit is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The bits set in either.
    #[must_use]
    pub const fn union(self, other: Actions) -> Actions {
        Actions(self.0 | other.0)
    }
}

impl fmt::Display for Actions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [(Actions, &str); 9] = [
            (Actions::ADD_HEADERS, "add_headers"),
            (Actions::CHANGE_BODY, "change_body"),
            (Actions::ADD_RCPT, "add_rcpt"),
            (Actions::DELETE_RCPT, "delete_rcpt"),
            (Actions::CHANGE_HEADERS, "change_headers"),
            (Actions::QUARANTINE, "quarantine"),
            (Actions::CHANGE_FROM, "change_from"),
            (Actions::ADD_RCPT_PAR, "add_rcpt_par"),
            (Actions::SET_SYMLIST, "set_symlist"),
        ];
        let mut first = true;
        for (bit, name) in NAMES {
            if self.contains(bit) {
                if !first {
                    f.write_str(",")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        let unknown = self.difference(Actions::ALL);
        if !unknown.is_empty() {
            if !first {
                f.write_str(",")?;
            }
            write!(f, "{:#x}", unknown.0)?;
        } else if first {
            f.write_str("none")?;
        }
        Ok(())
    }
}

/// `SMFIP_*`: protocol steps. `NO_*` bits: the milter does not want that
/// command. `NR_*` bits: the milter will not answer that command. Offered by
/// us (what we can honour), requested by the milter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ProtocolFlags(pub u32);

impl ProtocolFlags {
    /// `SMFIP_NOCONNECT`: do not send `SMFIC_CONNECT`.
    pub const NO_CONNECT: ProtocolFlags = ProtocolFlags(0x01);
    /// `SMFIP_NOHELO`: do not send `SMFIC_HELO`.
    pub const NO_HELO: ProtocolFlags = ProtocolFlags(0x02);
    /// `SMFIP_NOMAIL`: do not send `SMFIC_MAIL`.
    pub const NO_MAIL: ProtocolFlags = ProtocolFlags(0x04);
    /// `SMFIP_NORCPT`: do not send `SMFIC_RCPT`.
    pub const NO_RCPT: ProtocolFlags = ProtocolFlags(0x08);
    /// `SMFIP_NOBODY`: do not send `SMFIC_BODY`.
    pub const NO_BODY: ProtocolFlags = ProtocolFlags(0x10);
    /// `SMFIP_NOHDRS`: do not send `SMFIC_HEADER`.
    pub const NO_HEADERS: ProtocolFlags = ProtocolFlags(0x20);
    /// `SMFIP_NOEOH`: do not send `SMFIC_EOH`.
    pub const NO_EOH: ProtocolFlags = ProtocolFlags(0x40);
    /// `SMFIP_NR_HDR` (also spelt `SMFIP_NOHREPL`): no reply to `SMFIC_HEADER`.
    pub const NR_HEADER: ProtocolFlags = ProtocolFlags(0x80);
    /// `SMFIP_NOUNKNOWN`: do not send `SMFIC_UNKNOWN` (we never do).
    pub const NO_UNKNOWN: ProtocolFlags = ProtocolFlags(0x100);
    /// `SMFIP_NODATA`: do not send `SMFIC_DATA`.
    pub const NO_DATA: ProtocolFlags = ProtocolFlags(0x200);
    /// `SMFIP_SKIP`: the milter may answer a body chunk with `SMFIR_SKIP`.
    pub const SKIP: ProtocolFlags = ProtocolFlags(0x400);
    /// `SMFIP_RCPT_REJ`: also send recipients the MTA rejected (never
    /// offered: we only replay accepted recipients).
    pub const RCPT_REJ: ProtocolFlags = ProtocolFlags(0x800);
    /// `SMFIP_NR_CONN`: no reply to `SMFIC_CONNECT`.
    pub const NR_CONNECT: ProtocolFlags = ProtocolFlags(0x1000);
    /// `SMFIP_NR_HELO`: no reply to `SMFIC_HELO`.
    pub const NR_HELO: ProtocolFlags = ProtocolFlags(0x2000);
    /// `SMFIP_NR_MAIL`: no reply to `SMFIC_MAIL`.
    pub const NR_MAIL: ProtocolFlags = ProtocolFlags(0x4000);
    /// `SMFIP_NR_RCPT`: no reply to `SMFIC_RCPT`.
    pub const NR_RCPT: ProtocolFlags = ProtocolFlags(0x8000);
    /// `SMFIP_NR_DATA`: no reply to `SMFIC_DATA`.
    pub const NR_DATA: ProtocolFlags = ProtocolFlags(0x1_0000);
    /// `SMFIP_NR_UNKN`: no reply to `SMFIC_UNKNOWN` (never sent).
    pub const NR_UNKNOWN: ProtocolFlags = ProtocolFlags(0x2_0000);
    /// `SMFIP_NR_EOH`: no reply to `SMFIC_EOH`.
    pub const NR_EOH: ProtocolFlags = ProtocolFlags(0x4_0000);
    /// `SMFIP_NR_BODY`: no reply to `SMFIC_BODY`.
    pub const NR_BODY: ProtocolFlags = ProtocolFlags(0x8_0000);
    /// `SMFIP_HDR_LEADSPC`: header values are exchanged with their leading
    /// white space (otherwise one leading space is removed when sending and
    /// added to the milter's values).
    pub const HEADER_LEADING_SPACE: ProtocolFlags = ProtocolFlags(0x10_0000);
    /// Everything this client honours (what it offers): every bit above but
    /// `RCPT_REJ`.
    pub const OFFERED: ProtocolFlags = ProtocolFlags(0x1F_F7FF);

    /// Whether every bit of `other` is set here.
    pub const fn contains(self, other: ProtocolFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// The bits set in both.
    #[must_use]
    pub const fn intersection(self, other: ProtocolFlags) -> ProtocolFlags {
        ProtocolFlags(self.0 & other.0)
    }

    /// The bits set in either.
    #[must_use]
    pub const fn union(self, other: ProtocolFlags) -> ProtocolFlags {
        ProtocolFlags(self.0 | other.0)
    }
}

impl fmt::Display for ProtocolFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

/// `SMFIM_*`: the stages a macro list applies to, in the order a transaction
/// reaches them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MacroStage {
    /// `SMFIM_CONNECT` (0): sent with `SMFIC_CONNECT`.
    Connect,
    /// `SMFIM_HELO` (1): sent with `SMFIC_HELO`.
    Helo,
    /// `SMFIM_ENVFROM` (2): sent with `SMFIC_MAIL`.
    MailFrom,
    /// `SMFIM_ENVRCPT` (3): sent with each `SMFIC_RCPT`.
    Rcpt,
    /// `SMFIM_DATA` (4): sent with `SMFIC_DATA`.
    Data,
    /// `SMFIM_EOM` (5): sent with `SMFIC_BODYEOB`.
    EndOfMessage,
    /// `SMFIM_EOH` (6): sent with `SMFIC_EOH`.
    EndOfHeaders,
}

impl MacroStage {
    /// Every stage, by wire number.
    pub const ALL: [MacroStage; 7] = [
        MacroStage::Connect,
        MacroStage::Helo,
        MacroStage::MailFrom,
        MacroStage::Rcpt,
        MacroStage::Data,
        MacroStage::EndOfMessage,
        MacroStage::EndOfHeaders,
    ];

    /// The wire number (`SMFIM_*`).
    pub const fn number(self) -> u32 {
        match self {
            MacroStage::Connect => 0,
            MacroStage::Helo => 1,
            MacroStage::MailFrom => 2,
            MacroStage::Rcpt => 3,
            MacroStage::Data => 4,
            MacroStage::EndOfMessage => 5,
            MacroStage::EndOfHeaders => 6,
        }
    }

    /// The stage of a wire number, if known.
    pub fn from_number(n: u32) -> Option<MacroStage> {
        MacroStage::ALL.into_iter().find(|s| s.number() == n)
    }

    /// The command byte an `SMFIC_MACRO` packet for this stage names.
    pub const fn command(self) -> u8 {
        match self {
            MacroStage::Connect => b'C',
            MacroStage::Helo => b'H',
            MacroStage::MailFrom => b'M',
            MacroStage::Rcpt => b'R',
            MacroStage::Data => b'T',
            MacroStage::EndOfMessage => b'E',
            MacroStage::EndOfHeaders => b'N',
        }
    }

    /// The stage's name in configuration and docs (`connect`, `helo`,
    /// `mail`, `rcpt`, `data`, `eoh`, `eom`).
    pub const fn name(self) -> &'static str {
        match self {
            MacroStage::Connect => "connect",
            MacroStage::Helo => "helo",
            MacroStage::MailFrom => "mail",
            MacroStage::Rcpt => "rcpt",
            MacroStage::Data => "data",
            MacroStage::EndOfMessage => "eom",
            MacroStage::EndOfHeaders => "eoh",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offered_protocol_flags_are_every_known_bit_but_rcpt_rej() {
        let known = [
            ProtocolFlags::NO_CONNECT,
            ProtocolFlags::NO_HELO,
            ProtocolFlags::NO_MAIL,
            ProtocolFlags::NO_RCPT,
            ProtocolFlags::NO_BODY,
            ProtocolFlags::NO_HEADERS,
            ProtocolFlags::NO_EOH,
            ProtocolFlags::NR_HEADER,
            ProtocolFlags::NO_UNKNOWN,
            ProtocolFlags::NO_DATA,
            ProtocolFlags::SKIP,
            ProtocolFlags::NR_CONNECT,
            ProtocolFlags::NR_HELO,
            ProtocolFlags::NR_MAIL,
            ProtocolFlags::NR_RCPT,
            ProtocolFlags::NR_DATA,
            ProtocolFlags::NR_UNKNOWN,
            ProtocolFlags::NR_EOH,
            ProtocolFlags::NR_BODY,
            ProtocolFlags::HEADER_LEADING_SPACE,
        ];
        let all = known.iter().fold(ProtocolFlags(0), |a, b| a.union(*b));
        assert_eq!(all, ProtocolFlags::OFFERED);
        assert!(!ProtocolFlags::OFFERED.contains(ProtocolFlags::RCPT_REJ));
    }

    #[test]
    fn stages_round_trip_and_name_commands() {
        for stage in MacroStage::ALL {
            assert_eq!(MacroStage::from_number(stage.number()), Some(stage));
        }
        assert_eq!(MacroStage::from_number(7), None);
        assert_eq!(MacroStage::EndOfHeaders.command(), b'N');
    }

    #[test]
    fn actions_display_names_bits() {
        assert_eq!(Actions(0).to_string(), "none");
        assert_eq!(
            Actions::ADD_HEADERS.union(Actions::QUARANTINE).to_string(),
            "add_headers,quarantine"
        );
        assert_eq!(Actions(0x201).to_string(), "add_headers,0x200");
    }
}
