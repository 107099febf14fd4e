//! TLS to a shared database (issue 17): the store honours the URL's `sslmode` and
//! `sslrootcert`, every connection of its pool is encrypted when asked, and a certificate it
//! cannot trust is refused with a message that says so. Needs the server of
//! scripts/with-postgres.sh, which takes TLS with a self-signed certificate.

mod common;

use sqlx::Connection;
use syncdesk_engine::Store;

fn server() -> (String, String) {
    let url = common::postgres_server()
        .expect("TLS tests need PostgreSQL: run them through scripts/with-postgres.sh");
    let cert = std::env::var("SYNCDESK_TEST_PGCERT")
        .expect("scripts/with-postgres.sh gives the server's certificate");
    (url, cert)
}

/// How many of the store's connections to `database` there are, and how many use TLS.
async fn sessions(admin: &str, database: &str) -> (i64, i64) {
    let mut c = sqlx::PgConnection::connect(admin).await.unwrap();
    let row: (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), COUNT(*) FILTER (WHERE s.ssl)
         FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
         WHERE a.datname = $1 AND a.application_name = 'syncdesk'",
    )
    .bind(database)
    .fetch_one(&mut c)
    .await
    .unwrap();
    let _ = c.close().await;
    row
}

#[tokio::test]
async fn a_store_verifies_the_servers_certificate_and_encrypts_every_connection() {
    let (admin, cert) = server();
    let url = common::new_postgres_database(&admin).await;
    let name = url.rsplit('/').next().unwrap().to_string();

    // Checked against the certificate given, for the name in the URL: every connection of
    // the pool is encrypted.
    let verified = format!("{url}?sslmode=verify-full&sslrootcert={cert}");
    let store = Store::open_url(&verified).await.unwrap();
    store
        .jobs(&syncdesk_engine::PageRequest::first(1))
        .await
        .unwrap();
    let (all, encrypted) = sessions(&admin, &name).await;
    assert!(all >= 8, "the pool's connections: {all}");
    assert_eq!(encrypted, all, "every connection uses TLS");
    store.close().await;

    // Without that certificate the server's is one nobody vouches for: refused, and said.
    let unverified = format!("{url}?sslmode=verify-full");
    let err = Store::open_url(&unverified).await.unwrap_err().to_string();
    assert!(err.contains("cannot reach"), "{err}");
    assert!(
        err.to_lowercase().contains("certificate") || err.contains("UnknownIssuer"),
        "{err}"
    );

    // TLS turned off is plain, as the URL says.
    let plain = Store::open_url(&format!("{url}?sslmode=disable"))
        .await
        .unwrap();
    let (all, encrypted) = sessions(&admin, &name).await;
    assert_eq!((all >= 8, encrypted), (true, 0));
    plain.close().await;
}
