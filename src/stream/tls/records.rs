//! The TLS record layer after the handshake: AEAD seal and open in place, in the caller's buffer.
//!
//! Implements RFC 8446 §5.1–5.3 (TLS 1.3 records, per-record nonce, inner content type and
//! padding), RFC 5246 §6.2 with RFC 5288 (TLS 1.2 AES-GCM with its 8-byte explicit nonce) and
//! RFC 7905 (TLS 1.2 ChaCha20-Poly1305), over ring's AEADs. rustls runs the handshake and hands
//! over the traffic keys and sequence numbers; from then on every record is sealed and opened here,
//! with no allocation.
//!
//! Every function takes untrusted bytes and returns a [`TlsRecordError`], never panics.

use std::ops::Range;

use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey, NONCE_LEN};
use rustls::ConnectionTrafficSecrets;

/// Length of a record header: type, version, length.
pub(crate) const HEADER_LEN: usize = 5;
/// Largest plaintext fragment (RFC 8446 §5.1, RFC 5246 §6.2.1).
pub(crate) const MAX_PLAINTEXT: usize = 1 << 14;
/// Largest ciphertext fragment accepted: 2^14 + 256 (RFC 8446 §5.2). TLS 1.2 allows 2^14 + 2048,
/// but its AEAD suites add 24 bytes at most, so no honest peer comes near this bound.
pub(crate) const MAX_CIPHERTEXT: usize = MAX_PLAINTEXT + 256;
/// Largest whole record, header included.
pub(crate) const MAX_RECORD: usize = HEADER_LEN + MAX_CIPHERTEXT;
const TAG_LEN: usize = 16;
const EXPLICIT_NONCE_LEN: usize = 8;

/// Record content types (RFC 8446 §5.1).
pub(crate) mod content {
    /// alert
    pub(crate) const ALERT: u8 = 21;
    /// handshake
    pub(crate) const HANDSHAKE: u8 = 22;
    /// application_data
    pub(crate) const APPLICATION_DATA: u8 = 23;
}

/// Why a record or a post-handshake message was refused. Carried in
/// [`TlsError::Record`](super::TlsError::Record).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TlsRecordError {
    /// A record failed authentication: corrupted, forged, or out of sequence (bad_record_mac).
    #[error("record authentication failed (bad_record_mac)")]
    BadRecordMac,
    /// A record announced more than 2^14 + 256 bytes, or decrypted to more than 2^14 (TLS 1.3: an
    /// inner plaintext, padding included, of more than 2^14 + 1) (record_overflow).
    #[error("record larger than TLS allows (record_overflow)")]
    RecordOverflow,
    /// A record or post-handshake message was malformed (decode_error).
    #[error("malformed record or post-handshake message (decode_error)")]
    Decode,
    /// A record or handshake message of this type is not allowed after the handshake
    /// (unexpected_message).
    #[error("unexpected record or message type {0} after the handshake (unexpected_message)")]
    UnexpectedMessage(u8),
    /// The peer sent a fatal alert with this description (RFC 8446 §6).
    #[error("the peer sent alert {name:?} ({0})", name = alert_name(.0))]
    Alert(u8),
    /// A post-handshake handshake message was longer than the bound kept for it.
    #[error("post-handshake message too long")]
    HandshakeTooLong,
    /// The sequence number would wrap, or the suite's confidentiality limit was reached on a TLS 1.2
    /// session (which cannot change keys).
    #[error("record sequence number exhausted")]
    SequenceExhausted,
    /// The negotiated cipher suite has no implementation here.
    #[error("negotiated cipher suite not supported by the record layer")]
    UnsupportedSuite,
    /// rustls could not derive the next traffic secret after a KeyUpdate.
    #[error("key update failed")]
    KeyUpdate,
}

/// The alert's name as RFC 8446 §6.2 gives it (`CertificateRequired`), for messages.
fn alert_name(desc: &u8) -> rustls::AlertDescription {
    rustls::AlertDescription::from(*desc)
}

impl TlsRecordError {
    /// The alert description sent to the peer before the session is dropped, if one fits.
    pub(crate) fn alert_description(self) -> Option<u8> {
        match self {
            TlsRecordError::BadRecordMac => Some(20),
            TlsRecordError::RecordOverflow => Some(22),
            TlsRecordError::Decode | TlsRecordError::HandshakeTooLong => Some(50),
            TlsRecordError::UnexpectedMessage(_) => Some(10),
            TlsRecordError::SequenceExhausted
            | TlsRecordError::UnsupportedSuite
            | TlsRecordError::KeyUpdate => Some(80),
            TlsRecordError::Alert(_) => None,
        }
    }
}

/// The protocol version of a session, which fixes the record framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Version {
    Tls12,
    Tls13,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// TLS 1.3: nonce = iv ^ seq, AAD = header, inner content type after the plaintext.
    Tls13,
    /// TLS 1.2 AES-GCM: 8-byte explicit nonce after the header, AAD = seq, type, version, length.
    Tls12Explicit,
    /// TLS 1.2 ChaCha20-Poly1305: nonce = iv ^ seq, AAD as for AES-GCM.
    Tls12Xor,
}

/// The keys, IV and sequence number of one direction of a session.
pub(crate) struct Direction {
    key: LessSafeKey,
    iv: [u8; NONCE_LEN],
    seq: u64,
    framing: Framing,
}

impl std::fmt::Debug for Direction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Direction")
            .field("framing", &self.framing)
            .field("seq", &self.seq)
            .finish_non_exhaustive()
    }
}

impl Direction {
    /// Keys one direction with the secrets rustls extracted, starting at `seq`.
    pub(crate) fn new(
        version: Version,
        secrets: ConnectionTrafficSecrets,
        seq: u64,
    ) -> Result<Self, TlsRecordError> {
        let (alg, key, iv) = match &secrets {
            ConnectionTrafficSecrets::Aes128Gcm { key, iv } => (&aead::AES_128_GCM, key, iv),
            ConnectionTrafficSecrets::Aes256Gcm { key, iv } => (&aead::AES_256_GCM, key, iv),
            ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv } => {
                (&aead::CHACHA20_POLY1305, key, iv)
            }
            _ => return Err(TlsRecordError::UnsupportedSuite),
        };
        let iv: [u8; NONCE_LEN] = iv
            .as_ref()
            .try_into()
            .map_err(|_| TlsRecordError::UnsupportedSuite)?;
        Self::from_parts(version, alg, key.as_ref(), iv, seq)
    }

    fn from_parts(
        version: Version,
        alg: &'static aead::Algorithm,
        key: &[u8],
        iv: [u8; NONCE_LEN],
        seq: u64,
    ) -> Result<Self, TlsRecordError> {
        let framing = match version {
            Version::Tls13 => Framing::Tls13,
            Version::Tls12 if alg == &aead::CHACHA20_POLY1305 => Framing::Tls12Xor,
            Version::Tls12 => Framing::Tls12Explicit,
        };
        let key = UnboundKey::new(alg, key).map_err(|_| TlsRecordError::UnsupportedSuite)?;
        Ok(Direction {
            key: LessSafeKey::new(key),
            iv,
            seq,
            framing,
        })
    }

    /// The sequence number of the next record.
    pub(crate) fn seq(&self) -> u64 {
        self.seq
    }

    /// Bytes a record adds to its plaintext besides the header.
    pub(crate) fn overhead(&self) -> usize {
        match self.framing {
            Framing::Tls13 => 1 + TAG_LEN,
            Framing::Tls12Explicit => EXPLICIT_NONCE_LEN + TAG_LEN,
            Framing::Tls12Xor => TAG_LEN,
        }
    }

    fn take_seq(&mut self) -> Result<u64, TlsRecordError> {
        let seq = self.seq;
        self.seq = seq
            .checked_add(1)
            .ok_or(TlsRecordError::SequenceExhausted)?;
        Ok(seq)
    }

    /// The per-record nonce: the IV with the sequence number XORed into its last 8 bytes.
    fn xor_nonce(&self, seq: u64) -> [u8; NONCE_LEN] {
        let mut nonce = self.iv;
        for (n, s) in nonce[NONCE_LEN - 8..].iter_mut().zip(seq.to_be_bytes()) {
            *n ^= s;
        }
        nonce
    }

    /// Seals `payload` as one record of content type `typ` at the start of `out`; returns the record
    /// length. `payload` must be at most [`MAX_PLAINTEXT`] and `out` must hold
    /// `HEADER_LEN + payload.len() + overhead()` bytes.
    pub(crate) fn seal(
        &mut self,
        typ: u8,
        payload: &[u8],
        out: &mut [u8],
    ) -> Result<usize, TlsRecordError> {
        let total = HEADER_LEN + payload.len() + self.overhead();
        if payload.len() > MAX_PLAINTEXT || out.len() < total {
            return Err(TlsRecordError::RecordOverflow);
        }
        let seq = self.take_seq()?;
        let fragment_len = (total - HEADER_LEN) as u16;
        let out = &mut out[..total];
        let tag_at = total - TAG_LEN;
        let tag = match self.framing {
            Framing::Tls13 => {
                out[..HEADER_LEN].copy_from_slice(&header(content::APPLICATION_DATA, fragment_len));
                let end = HEADER_LEN + payload.len();
                out[HEADER_LEN..end].copy_from_slice(payload);
                out[end] = typ;
                let (head, body) = out.split_at_mut(HEADER_LEN);
                let nonce = Nonce::assume_unique_for_key(self.xor_nonce(seq));
                self.key.seal_in_place_separate_tag(
                    nonce,
                    Aad::from(&*head),
                    &mut body[..=payload.len()],
                )
            }
            Framing::Tls12Explicit | Framing::Tls12Xor => {
                out[..HEADER_LEN].copy_from_slice(&header(typ, fragment_len));
                let nonce = self.xor_nonce(seq);
                let start = if self.framing == Framing::Tls12Explicit {
                    // RFC 5288 §3: the explicit part is ours to choose; the XORed sequence number
                    // is unique per key, as rustls does it.
                    out[HEADER_LEN..HEADER_LEN + EXPLICIT_NONCE_LEN]
                        .copy_from_slice(&nonce[NONCE_LEN - EXPLICIT_NONCE_LEN..]);
                    HEADER_LEN + EXPLICIT_NONCE_LEN
                } else {
                    HEADER_LEN
                };
                out[start..tag_at].copy_from_slice(payload);
                let aad = tls12_aad(seq, typ, payload.len());
                self.key.seal_in_place_separate_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(aad),
                    &mut out[start..tag_at],
                )
            }
        }
        .map_err(|_| TlsRecordError::RecordOverflow)?;
        out[tag_at..].copy_from_slice(tag.as_ref());
        Ok(total)
    }

    /// Opens the whole record `record` (header included, as measured by [`record_len`]) in place.
    /// Returns its content type and where its plaintext now lies within `record`.
    pub(crate) fn open(&mut self, record: &mut [u8]) -> Result<(u8, Range<usize>), TlsRecordError> {
        if record.len() < HEADER_LEN {
            return Err(TlsRecordError::Decode);
        }
        let outer = record[0];
        let (head, body) = record.split_at_mut(HEADER_LEN);
        // Both versions write 3.3 (TLS 1.3's legacy_record_version); TLS 1.2 leaves the header out
        // of the AAD, so it is checked here.
        if head[1..3] != [3, 3] || usize::from(u16::from_be_bytes([head[3], head[4]])) != body.len()
        {
            return Err(TlsRecordError::Decode);
        }
        match self.framing {
            Framing::Tls13 => {
                if outer != content::APPLICATION_DATA {
                    return Err(TlsRecordError::UnexpectedMessage(outer));
                }
                if body.len() < TAG_LEN + 1 {
                    return Err(TlsRecordError::Decode);
                }
                let seq = self.take_seq()?;
                let nonce = Nonce::assume_unique_for_key(self.xor_nonce(seq));
                let plain = self
                    .key
                    .open_in_place(nonce, Aad::from(&*head), body)
                    .map_err(|_| TlsRecordError::BadRecordMac)?;
                // RFC 8446 §5.4: the inner plaintext (content, type and padding) is at most
                // 2^14 + 1 bytes.
                if plain.len() > MAX_PLAINTEXT + 1 {
                    return Err(TlsRecordError::RecordOverflow);
                }
                // RFC 8446 §5.4: strip the zero padding; the last non-zero byte is the real type.
                let Some(type_at) = plain.iter().rposition(|&b| b != 0) else {
                    return Err(TlsRecordError::UnexpectedMessage(0));
                };
                Ok((plain[type_at], HEADER_LEN..HEADER_LEN + type_at))
            }
            Framing::Tls12Explicit | Framing::Tls12Xor => {
                if !matches!(
                    outer,
                    content::ALERT | content::HANDSHAKE | content::APPLICATION_DATA
                ) {
                    return Err(TlsRecordError::UnexpectedMessage(outer));
                }
                let explicit = if self.framing == Framing::Tls12Explicit {
                    EXPLICIT_NONCE_LEN
                } else {
                    0
                };
                if body.len() < explicit + TAG_LEN {
                    return Err(TlsRecordError::Decode);
                }
                let plain_len = body.len() - explicit - TAG_LEN;
                if plain_len > MAX_PLAINTEXT {
                    return Err(TlsRecordError::RecordOverflow);
                }
                let seq = self.take_seq()?;
                let nonce = if explicit > 0 {
                    let mut n = self.iv;
                    n[NONCE_LEN - EXPLICIT_NONCE_LEN..]
                        .copy_from_slice(&body[..EXPLICIT_NONCE_LEN]);
                    n
                } else {
                    self.xor_nonce(seq)
                };
                let aad = tls12_aad(seq, outer, plain_len);
                self.key
                    .open_in_place(
                        Nonce::assume_unique_for_key(nonce),
                        Aad::from(aad),
                        &mut body[explicit..],
                    )
                    .map_err(|_| TlsRecordError::BadRecordMac)?;
                let start = HEADER_LEN + explicit;
                Ok((outer, start..start + plain_len))
            }
        }
    }
}

fn header(typ: u8, len: u16) -> [u8; HEADER_LEN] {
    let [hi, lo] = len.to_be_bytes();
    [typ, 3, 3, hi, lo]
}

/// RFC 5246 §6.2.3.3: seq_num + type + version + length.
fn tls12_aad(seq: u64, typ: u8, len: usize) -> [u8; 13] {
    let mut aad = [0u8; 13];
    aad[..8].copy_from_slice(&seq.to_be_bytes());
    aad[8] = typ;
    aad[9] = 3;
    aad[10] = 3;
    aad[11..].copy_from_slice(&(len as u16).to_be_bytes());
    aad
}

/// The length of the whole record at the start of `buf` (header included): `Ok(None)` when the
/// header or the body is not all there yet, an error when the header announces more than TLS allows.
pub(crate) fn record_len(buf: &[u8]) -> Result<Option<usize>, TlsRecordError> {
    let Some(&[_, major, _, hi, lo]) = buf.get(..HEADER_LEN) else {
        return Ok(None);
    };
    if major != 3 {
        return Err(TlsRecordError::Decode);
    }
    let len = usize::from(u16::from_be_bytes([hi, lo]));
    if len > MAX_CIPHERTEXT {
        return Err(TlsRecordError::RecordOverflow);
    }
    Ok((buf.len() >= HEADER_LEN + len).then_some(HEADER_LEN + len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn direction(version: Version, kind: u8, seq: u64) -> Direction {
        let (alg, key): (&'static aead::Algorithm, &[u8]) = match kind {
            0 => (&aead::AES_128_GCM, &[1; 16]),
            1 => (&aead::AES_256_GCM, &[2; 32]),
            _ => (&aead::CHACHA20_POLY1305, &[3; 32]),
        };
        Direction::from_parts(version, alg, key, [7; NONCE_LEN], seq).unwrap()
    }

    fn pair(version: Version, kind: u8) -> (Direction, Direction) {
        (direction(version, kind, 5), direction(version, kind, 5))
    }

    const CASES: [(Version, u8); 6] = [
        (Version::Tls13, 0),
        (Version::Tls13, 1),
        (Version::Tls13, 2),
        (Version::Tls12, 0),
        (Version::Tls12, 1),
        (Version::Tls12, 2),
    ];

    #[test]
    fn sealed_records_open_to_the_same_bytes_at_every_size() {
        for (version, kind) in CASES {
            let (mut tx, mut rx) = pair(version, kind);
            let mut buf = vec![0u8; MAX_RECORD];
            for len in [0, 1, 15, 16, 17, 1000, MAX_PLAINTEXT] {
                let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
                let n = tx
                    .seal(content::APPLICATION_DATA, &payload, &mut buf)
                    .unwrap();
                assert_eq!(n, HEADER_LEN + len + tx.overhead());
                assert_eq!(record_len(&buf[..n]), Ok(Some(n)));
                let (typ, range) = rx.open(&mut buf[..n]).unwrap();
                assert_eq!(typ, content::APPLICATION_DATA);
                assert_eq!(
                    &buf[range],
                    &payload[..],
                    "{version:?} suite {kind} len {len}"
                );
            }
        }
    }

    #[test]
    fn any_flipped_bit_fails_authentication_or_framing() {
        for (version, kind) in CASES {
            let (mut tx, _) = pair(version, kind);
            let mut sealed = vec![0u8; 64];
            let n = tx.seal(content::ALERT, &[1, 0], &mut sealed).unwrap();
            for at in 0..n {
                let (_, mut rx) = pair(version, kind);
                let mut record = sealed[..n].to_vec();
                record[at] ^= 0x10;
                assert!(
                    rx.open(&mut record).is_err(),
                    "{version:?} {kind} byte {at}"
                );
            }
        }
    }

    #[test]
    fn a_replayed_or_reordered_record_is_refused() {
        let (mut tx, mut rx) = pair(Version::Tls13, 0);
        let mut a = [0u8; 64];
        let mut b = [0u8; 64];
        let na = tx.seal(content::APPLICATION_DATA, b"one", &mut a).unwrap();
        let nb = tx.seal(content::APPLICATION_DATA, b"two", &mut b).unwrap();
        assert_eq!(rx.open(&mut b[..nb]), Err(TlsRecordError::BadRecordMac));
        let _ = na;
    }

    #[test]
    fn oversized_and_short_records_are_typed_errors() {
        assert_eq!(
            record_len(&[23, 3, 3, 0x41, 0x01]),
            Err(TlsRecordError::RecordOverflow)
        );
        assert_eq!(record_len(&[23, 3, 3, 0x41, 0x00]), Ok(None));
        assert_eq!(record_len(&[23, 2, 3, 0, 0]), Err(TlsRecordError::Decode));
        for (version, kind) in CASES {
            let (_, mut rx) = pair(version, kind);
            for len in 0..TAG_LEN + EXPLICIT_NONCE_LEN {
                let mut record = vec![23, 3, 3, 0, len as u8];
                record.resize(HEADER_LEN + len, 0);
                assert!(rx.open(&mut record).is_err());
            }
        }
    }

    #[test]
    fn the_sequence_number_never_wraps() {
        let mut tx = direction(Version::Tls13, 0, u64::MAX);
        let mut buf = [0u8; 64];
        assert_eq!(
            tx.seal(content::APPLICATION_DATA, b"x", &mut buf),
            Err(TlsRecordError::SequenceExhausted)
        );
    }

    #[test]
    fn tls13_padding_is_stripped_and_all_zero_is_refused() {
        let (mut tx, mut rx) = pair(Version::Tls13, 2);
        // A record whose inner plaintext is "hi", type 23, then three bytes of padding: sealed by
        // hand as a peer that pads would.
        let mut buf = [0u8; 64];
        let n = tx
            .seal(0, &[b'h', b'i', content::APPLICATION_DATA, 0, 0], &mut buf)
            .unwrap();
        let (typ, range) = rx.open(&mut buf[..n]).unwrap();
        assert_eq!((typ, &buf[range]), (content::APPLICATION_DATA, &b"hi"[..]));
        let n = tx.seal(0, &[0, 0, 0], &mut buf).unwrap();
        assert_eq!(
            rx.open(&mut buf[..n]),
            Err(TlsRecordError::UnexpectedMessage(0))
        );
    }

    #[test]
    fn tls13_inner_plaintext_over_the_limit_is_an_overflow_even_if_padding() {
        for kind in 0..3 {
            let (mut tx, mut rx) = pair(Version::Tls13, kind);
            // The largest inner plaintext allowed: 2^14 bytes of content and the type, no
            // padding...
            let mut buf = vec![0u8; MAX_RECORD];
            let content = vec![b'x'; MAX_PLAINTEXT];
            let n = tx
                .seal(content::APPLICATION_DATA, &content, &mut buf)
                .unwrap();
            let (typ, range) = rx.open(&mut buf[..n]).unwrap();
            assert_eq!(
                (typ, range.len()),
                (content::APPLICATION_DATA, MAX_PLAINTEXT)
            );
            // ...and one byte of padding more, sealed by hand as a peer that pads past the limit
            // would: short content, long padding.
            let mut inner = vec![0u8; MAX_PLAINTEXT + 2];
            inner[..2].copy_from_slice(b"hi");
            inner[2] = content::APPLICATION_DATA;
            let len = inner.len() + TAG_LEN;
            let mut record = header(content::APPLICATION_DATA, len as u16).to_vec();
            let seq = tx.take_seq().unwrap();
            let tag = tx
                .key
                .seal_in_place_separate_tag(
                    Nonce::assume_unique_for_key(tx.xor_nonce(seq)),
                    Aad::from(&record[..]),
                    &mut inner,
                )
                .unwrap();
            record.extend_from_slice(&inner);
            record.extend_from_slice(tag.as_ref());
            assert_eq!(record_len(&record), Ok(Some(record.len())));
            assert_eq!(
                rx.open(&mut record),
                Err(TlsRecordError::RecordOverflow),
                "suite {kind}"
            );
        }
    }
}
