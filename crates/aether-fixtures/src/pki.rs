//! Certificates made at test time: a CA, and server certificates for
//! `localhost` / `127.0.0.1` signed by it, written as PEM files.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, Certificate, CertificateParams, DnType, IsCa, KeyPair};

/// A certificate authority whose certificate is at [`Ca::pem`].
pub struct Ca {
    cert: Certificate,
    key: KeyPair,
    /// Its certificate (PEM), what clients are told to trust.
    pub pem: PathBuf,
}

/// A server's certificate and key files.
#[derive(Debug, Clone)]
pub struct ServerCert {
    /// Certificate chain (PEM, leaf only).
    pub cert: PathBuf,
    /// Private key (PEM, PKCS#8).
    pub key: PathBuf,
}

impl Ca {
    /// A new CA called `name`; its certificate is written to `dir/<name>.pem`.
    pub fn new(dir: &Path, name: &str) -> Ca {
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.self_signed(&key).expect("CA certificate");
        let pem = dir.join(format!("{name}.pem"));
        std::fs::write(&pem, cert.pem()).expect("write CA certificate");
        Ca { cert, key, pem }
    }

    /// A certificate for `localhost` and `127.0.0.1` signed by this CA,
    /// written to `dir/<name>.crt` and `dir/<name>.key` (replacing them
    /// whole: each file is renamed into place).
    pub fn server_cert(&self, dir: &Path, name: &str) -> ServerCert {
        let key = KeyPair::generate().expect("server key");
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .expect("server params");
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("server certificate");
        let files = ServerCert {
            cert: dir.join(format!("{name}.crt")),
            key: dir.join(format!("{name}.key")),
        };
        write_whole(&files.key, &key.serialize_pem());
        write_whole(&files.cert, &cert.pem());
        files
    }
}

fn write_whole(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).expect("write PEM");
    std::fs::rename(&tmp, path).expect("rename PEM");
}
