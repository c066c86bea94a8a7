//! The TLS identity for VeNCrypt: a certificate and key given by the operator (PEM files), or
//! generated on first start (self-signed, rcgen) and kept in a directory so viewers can pin it
//! (TigerVNC: `vncviewer -X509CA=<dir>/cert.pem`). Builds the rustls acceptor the adapter uses.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// File names inside the identity directory.
pub const CERT_FILE: &str = "cert.pem";
pub const KEY_FILE: &str = "key.pem";

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {what} {path}")]
    Read {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} holds no PEM {what}")]
    Pem {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: rustls_pki_types::pem::Error,
    },
    #[error("cannot generate a certificate")]
    Generate(#[from] rcgen::Error),
    #[error("rustls refuses the certificate or key")]
    Rustls(#[from] rustls::Error),
}

/// A certificate chain and its key, as PEM text.
#[derive(Clone)]
pub struct Identity {
    pub cert_pem: String,
    pub key_pem: String,
    /// Where the certificate lives (for logs and for viewers to pin).
    pub cert_path: PathBuf,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity").field("cert_path", &self.cert_path).finish_non_exhaustive()
    }
}

fn read(what: &'static str, path: &Path) -> Result<String, TlsError> {
    std::fs::read_to_string(path).map_err(|source| TlsError::Read { what, path: path.to_path_buf(), source })
}

impl Identity {
    /// The operator's certificate (chain) and key.
    pub fn load(cert: &Path, key: &Path) -> Result<Identity, TlsError> {
        let id = Identity { cert_pem: read("certificate", cert)?, key_pem: read("key", key)?, cert_path: cert.to_path_buf() };
        id.check(key)?;
        Ok(id)
    }

    /// The identity kept in `dir`, generated there (self-signed for `names`: host names and IP
    /// addresses) if absent. Returns it and whether it was generated now.
    pub fn load_or_generate(dir: &Path, names: &[String]) -> Result<(Identity, bool), TlsError> {
        let (cert, key) = (dir.join(CERT_FILE), dir.join(KEY_FILE));
        if cert.exists() && key.exists() {
            return Ok((Identity::load(&cert, &key)?, false));
        }
        // Its own trust anchor: GnuTLS (TigerVNC's `-X509CA`) accepts a self-signed certificate as
        // a CA only with basicConstraints CA:TRUE and keyCertSign; without them the viewer stops
        // at a "signer is not a CA" question.
        let mut params = rcgen::CertificateParams::new(names.to_vec())?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(rcgen::DnType::CommonName, "doppel VNC server");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature, rcgen::KeyUsagePurpose::KeyCertSign];
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        // Valid from the start of this year for twenty years: rcgen's default (1975 to 4096)
        // makes GnuTLS viewers stop at a validity question.
        let year = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(2026, |d| 1970 + i32::try_from(d.as_secs() / 31_556_952).unwrap_or(56));
        params.not_before = rcgen::date_time_ymd(year, 1, 1);
        params.not_after = rcgen::date_time_ymd(year + 20, 1, 1);
        let key_pair = rcgen::KeyPair::generate()?;
        let cert_pem = params.self_signed(&key_pair)?.pem();
        let id = Identity { cert_pem, key_pem: key_pair.serialize_pem(), cert_path: cert.clone() };
        let write = |path: &Path, text: &str, mode: u32| -> Result<(), TlsError> {
            let err = |source| TlsError::Write { path: path.to_path_buf(), source };
            std::fs::create_dir_all(dir).map_err(err)?;
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(mode).open(path).map_err(err)?;
            std::io::Write::write_all(&mut f, text.as_bytes()).map_err(err)
        };
        write(&key, &id.key_pem, 0o600)?;
        write(&cert, &id.cert_pem, 0o644)?;
        Ok((id, true))
    }

    fn parts(&self, key_path: &Path) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
        fn pem<'p>(what: &'static str, path: &'p Path) -> impl FnOnce(rustls_pki_types::pem::Error) -> TlsError + 'p {
            move |source| TlsError::Pem { what, path: path.to_path_buf(), source }
        }
        let certs = CertificateDer::pem_slice_iter(self.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(pem("certificate", &self.cert_path))?;
        if certs.is_empty() {
            return Err(TlsError::Pem {
                what: "certificate",
                path: self.cert_path.clone(),
                source: rustls_pki_types::pem::Error::NoItemsFound,
            });
        }
        let key = PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes()).map_err(pem("private key", key_path))?;
        Ok((certs, key))
    }

    fn check(&self, key_path: &Path) -> Result<(), TlsError> {
        let (certs, key) = self.parts(key_path)?;
        server_config(certs, key).map(drop)
    }

    /// The acceptor for the adapter.
    pub fn acceptor(&self) -> Result<TlsAcceptor, TlsError> {
        let (certs, key) = self.parts(&self.cert_path)?;
        Ok(TlsAcceptor::from(Arc::new(server_config(certs, key)?)))
    }
}

fn server_config(certs: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> Result<rustls::ServerConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    // No TLS 1.3 session tickets: TigerVNC (1.12, GnuTLS) reads the ticket record that arrives
    // with the SecurityResult, leaves the SecurityResult in GnuTLS's buffer and then waits on the
    // socket for ever. Viewers do not resume sessions anyway.
    config.send_tls13_tickets = 0;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_once_then_kept_and_bad_files_are_named() {
        let dir = std::env::temp_dir().join(format!("doppel-rfb-tls-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (a, fresh) = Identity::load_or_generate(&dir, &["localhost".into(), "127.0.0.1".into()]).unwrap();
        assert!(fresh);
        a.acceptor().unwrap();
        let (b, fresh) = Identity::load_or_generate(&dir, &["localhost".into()]).unwrap();
        assert!(!fresh);
        assert_eq!(a.cert_pem, b.cert_pem);
        std::fs::write(dir.join(CERT_FILE), "not pem").unwrap();
        let e = Identity::load_or_generate(&dir, &[]).unwrap_err();
        assert!(e.to_string().contains("cert.pem"), "{e}");
        let e = Identity::load(&dir.join("missing.pem"), &dir.join(KEY_FILE)).unwrap_err();
        assert!(matches!(e, TlsError::Read { what: "certificate", .. }));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
