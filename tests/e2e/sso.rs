//! Single sign-on: the gateway accepts tokens of the configured OpenID Connect issuer (a
//! local issuer started here), checked against its JWKS with rotation, issuer, audience,
//! expiry and the algorithm allow-list; roles still come from identity.

use crate::harness::{Backend, Harness};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

// Keys made for this test only (openssl genpkey).
const KEY_1: &str = "-----BEGIN PRIVATE KEY-----\nMIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQCfV8ssF5++ZI0q\nXkPP6j838K6jVhq71GHBTJDGW1C2tUg5TlTXUJRo5NhxNVm39vC2Ypb3DzQWHsVD\nuchoffPk1Bn1yRqWHqvRfgnTJVKi1xBjtBiuBgCxrseGZNeZ/qqyN7m4BNAYKopg\nRWhftYr7mRtJQvyxkXQ41ZYYp/a/Zp3bGGR7fBdixsdRXj2YP3U8q0qBjonRns1M\nyTYm+4Y2PR3uF67Q8K0Dv/thoPR7zdxm8kglVymwU7zwavfGzjZ19hb0I+ItLxPC\n1NPAIRWs6Rm3UtpLB5symZs6NoAI1FBaghecV+aVz8s0MntDeCCkm49Q6l2fCbYl\ndn8C7sO7AgMBAAECggEADf+AccHW3rr79m+MNYUL7gt5drqRuVPRt/wp8RhZ4Yh7\nbSKx1q3VhoF+zN3gS9uoZIgKCxo4JoP9gGhJxXmLJjHGi2O8r4NyRK0gin604RP+\nSe6rBwlaoOwMddoAtsk7OvzPlphAT7SCWNgVcJME6qVrUub3nAHTMUr810hU0kDl\n/j6iGIYED8UMgpIGFfnFybFzWynlUFkquiEUUTUsOSp67C4hhlNXGBK/4y2fkUlo\nYWwp5x5gjciS4wYMxeK4ksYfZHIbzQht3HSur0+sCiS84/nNXhiKBmr5qajd7Wpu\nIUc6Sw4AwHI7YiXjcoZEWmSnHtLIYoMACdAhxrR9QQKBgQDXSm13fjUwOeoHaX9O\nzkZeb3hKhd5AarBdn3FWqtJdldwpvIMHx3aUMt2x5uTdtzUOWmRM+KGCFC1EZ2nE\nZQJJPZBcTVmaLWyi5lWiziNDrSGlKPtDCGPPXQBy8DBzopFwNeGMB/dLaDItHXCj\nZnyKHlsYfBJ+kv4B97xKBWoa7QKBgQC9eRpensTcd8hm38EkQ/3IgfBf0owZwR1f\nhe0bgAHoE+1IFatIkq/s6RwItkAtG7R6F3+av0D+OH+btcimddulmEM/GjbD0++5\nzcyZOxsT2GDQTNRFNkhe6Woy340A2wpG5mAARd5co/AXyaC/5J0ih7+gS85rrUYM\nEIz9UAD8RwKBgG26zp534i4pZoHOoIePFUiusfXx0zyr5CZjzMWqnTv71NIk9ffy\nDxsr7djt4TqsVUtygOrGUrNVC1lxB/SEsyyXR0v0VLYDbvp8QauQO2MUDDD8+UvK\nK+0V7tOmXluhwVUa8VGJAd8aRXC/L5jo9JMFM9L/8gE3dGWWWg60QcdlAoGAYfhf\nkTNpOVJadg8WkEjzzZyajQGSXbLEHGNkkcajtbuwAojp0xG+E7MJQtvx3SEpNcQ2\nv+5Kjejq2rmpMaFZXIuZoeRNEv7gQuPN+iFcw+srTCmdzNffnev1dK6w+xNHgheW\n5i06aA6Ak9w22WI9eeBVTm5EItsqkAxyynx2tfsCgYA6IUUY8W0ZQqfldYHIf6t+\nkn/WYeAgsl4RLM3h66cKZ2XvZTmFyiTKYhjI4YWOmAjyyOwz4WtY1O43T/oFKhFw\nrp95aqTC9ryNEzfKY8U0RXaPxIfPTg4AjYRZRQxRNVtTpKVcuI1AVKcdPfEh0K5r\nMrvyoPDEkkoEm3xhsqVj+w==\n-----END PRIVATE KEY-----\n";
const KEY_2: &str = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDFEQyh2LK9QPnB\nfIr6kcrlqp7Dlo9pf4KEo1K4E30iHL02JE/n2HO7g+YT9vFckLWY401EZzGLsQMM\n+j/ZCBs/WL9ZR2SfGgR3nw/3+biItvo2FHCzSGvnzL3ewkgKDzAL8FSrTkr16lgJ\nD//U/em+/uKXT0wYwiqYR/Ay5fjr8ie/gZA9zu+dIKSOPdeUt2LtY0kxUQ7ER7X8\nMwJf5htdBh6a5wBgtMvCpVQTPkmUL33kt33BPaevEZ4ghdEpqcEkVSEMgBrjY700\n+3ZnuzzFjgcfRHqM31P4OjlJUI4zmDsDM0deYgV603U06w7U0VTeV6hpEIdPrl2j\nG8pukmZjAgMBAAECggEAWhs3mXFKGPryuCPIMFYlXeor+eaH4IcrGJbNJdnTZ5uY\ncH8eAjaYhG8E7rAFIHwSbLvSAqrknqjrai2qsAPi4Y4kwB/CxHTTAhc65/nJBMoV\nklC6T1+X5z9Yudg/tEnJgEv9iu6bm+HxKwOjyLHpBSnqVaEufEubylFqZPt+W/Nq\nCkC2vwwGcHzq5DJzOJ8qk8Dc0MkUap38bbJpGR4U0X+QWd3XVeysFgHcJ3lailSN\nBczJFwT5d7XcGt14FSMRH3yoDV+aQeaXVtctXMMAggYJPi7zSRjFCTw85/K/wmNN\n1jqPxwjjz9yCUSztRTCInLaGWtfs0f4gbpuDgKy+YQKBgQDjaN/4BQNZNiSXX6MQ\nl7kY8h0HqOv7bKYNjyHC3sA8Yrt3gRb/oOo+zN3jltckby4jLoeNqTuHikr1XeyA\nY5iv8nDZ65XOnkcgBKOY/pXsx9NExNKZRAqROf9bfcjNY6wA+R+ftWx2MavseLFi\nPx7xP8/A8N3L0mWpkkDAnyrViQKBgQDd15cUAx8XYV5na8LZWLmTaNFZN4/MJbyg\nuRNyA8tzyJXIA22cfYgRnDbso4RcsaXuuZbJxX/SxbKv7hqDEd4Y6b1B3aaFUxBV\n7YhNUyLF2+Cgy2HBXg0ter8PTwtejsx+/EjyOhUPIlUMvp+w6BH8t26+kiqi7/3U\nKgp33BSNiwKBgE/FQRNSRttrZ6iFzsCKSE6c11wRgD3g3drRw4kE9C/6fkIsUTH4\nc1L2MDuedPd93JRQxRIHNC+Wbjbl7IkY5r2JcNawkgs5cD+mAPExFMxLSCvOUwWa\nXY6V5qJkXCTX+sUYnmQ6ksJfKCy6JZcOBz+fH7RRiavusOSrvfUToEXpAoGBAMBC\nvh6L7gA3VLfQ/tebO4nzx6vIqYlGE0o/3AhuHX9FEfp8bhy39ps8haVkuawUEjjp\nAzPvRK6IxCoQ800wyQlSWcGhtVXK/VdbO0u4h2RvASiZ2yjYuBb4UGmWGcZjf/t1\n7kpv6BxrpsYa1w9csWoSF5p11xnLYHLl1Ji4Vd+tAoGASGprzkdKsWKLq52dF1vZ\nuJoVoYbi+dU6dE/I/nQvHNr4o68xXnqhbvP0udt21JbrJTm0fNlXFgsJc4O5qeEF\nyJXUNfpsFSly2mniGIAw27is9MOeCBSEl4wz5DUhpE3xiuKt9gLGdHo79yWRc96O\nTFZRMdHqWUuUnTTKglI+0Pk=\n-----END PRIVATE KEY-----\n";
const N_1: &str = "n1fLLBefvmSNKl5Dz-o_N_Cuo1Yau9RhwUyQxltQtrVIOU5U11CUaOTYcTVZt_bwtmKW9w80Fh7FQ7nIaH3z5NQZ9ckalh6r0X4J0yVSotcQY7QYrgYAsa7HhmTXmf6qsje5uATQGCqKYEVoX7WK-5kbSUL8sZF0ONWWGKf2v2ad2xhke3wXYsbHUV49mD91PKtKgY6J0Z7NTMk2JvuGNj0d7heu0PCtA7_7YaD0e83cZvJIJVcpsFO88Gr3xs42dfYW9CPiLS8TwtTTwCEVrOkZt1LaSwebMpmbOjaACNRQWoIXnFfmlc_LNDJ7Q3ggpJuPUOpdnwm2JXZ_Au7Duw";
const N_2: &str = "xREModiyvUD5wXyK-pHK5aqew5aPaX-ChKNSuBN9Ihy9NiRP59hzu4PmE_bxXJC1mONNRGcxi7EDDPo_2QgbP1i_WUdknxoEd58P9_m4iLb6NhRws0hr58y93sJICg8wC_BUq05K9epYCQ__1P3pvv7il09MGMIqmEfwMuX46_Inv4GQPc7vnSCkjj3XlLdi7WNJMVEOxEe1_DMCX-YbXQYemucAYLTLwqVUEz5JlC995Ld9wT2nrxGeIIXRKanBJFUhDIAa42O9NPt2Z7s8xY4HH0R6jN9T-Do5SVCOM5g7AzNHXmIFetN1NOsO1NFU3leoaRCHT65doxvKbpJmYw";

fn jwk(kid: &str, n: &str) -> Value {
    json!({"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": n, "e": "AQAB"})
}

/// A local issuer: discovery document and a JWKS the test can change (rotation).
async fn issuer(keys: Arc<Mutex<Vec<Value>>>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let discovery = json!({"issuer": base, "jwks_uri": format!("{base}/jwks"),
        "id_token_signing_alg_values_supported": ["RS256"]});
    let app = axum::Router::new()
        .route(
            "/.well-known/openid-configuration",
            axum::routing::get(move || {
                let discovery = discovery.clone();
                async move { axum::Json(discovery) }
            }),
        )
        .route(
            "/jwks",
            axum::routing::get(move || {
                let keys = keys.clone();
                async move { axum::Json(json!({"keys": keys.lock().unwrap().clone()})) }
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

fn token(key: &str, kid: &str, claims: Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_string());
    jsonwebtoken::encode(
        &header,
        &claims,
        &EncodingKey::from_rsa_pem(key.as_bytes()).unwrap(),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tokens_of_the_company_issuer_are_accepted_and_checked() {
    let keys = Arc::new(Mutex::new(vec![jwk("k1", N_1)]));
    let base = issuer(keys.clone()).await;
    let harness = Harness::start_with(Backend::Sqlite, &[], |config| {
        config.security.oidc_issuer = Some(base.clone());
        config.security.oidc_audience = Some("chorus".into());
    })
    .await;
    let _curator = harness.tenant("acme", &["alice"]).await;
    let now = chrono::Utc::now().timestamp();
    let claims = |overrides: Value| {
        let mut claims = json!({"iss": base, "aud": "chorus", "sub": "alice",
            "chorus_tenant": "acme", "iat": now, "exp": now + 600});
        for (key, value) in overrides.as_object().unwrap() {
            claims[key] = value.clone();
        }
        claims
    };
    let me = |token: String| {
        let harness = &harness;
        async move { harness.api.get::<Value>("/v1/me", &token).await }
    };

    // A good token: the person, with the roles identity gives (not the token's).
    let alice = me(token(KEY_1, "k1", claims(json!({"roles": ["admin"]}))))
        .await
        .unwrap();
    assert_eq!(alice["id"], "alice");
    assert_eq!(alice["roles"], json!(["advocate"]));

    // Wrong audience, issuer, expired, unknown user, unknown key: refused.
    for (token, says) in [
        (
            token(KEY_1, "k1", claims(json!({"aud": "someone-else"}))),
            "not valid",
        ),
        (
            token(KEY_1, "k1", claims(json!({"iss": "https://evil.example"}))),
            "not valid",
        ),
        (
            token(KEY_1, "k1", claims(json!({"exp": now - 3600}))),
            "not valid",
        ),
        (
            token(KEY_1, "k1", claims(json!({"sub": "mallory"}))),
            "unknown user",
        ),
        (token(KEY_2, "k2", claims(json!({}))), "not the issuer's"),
        // Signed with another key than the one it names.
        (token(KEY_2, "k1", claims(json!({}))), "not valid"),
    ] {
        let refused = me(token).await.unwrap_err();
        assert_eq!(refused.status, 401, "{}", refused.body);
        assert!(
            refused.body["detail"]
                .as_str()
                .unwrap_or_default()
                .contains(says),
            "{says}: {}",
            refused.body
        );
    }
    // An HS256 token with a made-up secret is not an issuer token and fails as a dev token.
    let forged = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims(json!({})),
        &EncodingKey::from_secret(b"guess"),
    )
    .unwrap();
    assert_eq!(me(forged).await.unwrap_err().status, 401);

    // Rotation: the issuer publishes k2; a token under k2 is accepted once the JWKS is read
    // again (at most every 10 s for unknown keys).
    keys.lock().unwrap().push(jwk("k2", N_2));
    tokio::time::sleep(std::time::Duration::from_secs(11)).await;
    let rotated = me(token(KEY_2, "k2", claims(json!({})))).await.unwrap();
    assert_eq!(rotated["id"], "alice");
    harness.stop().await;
}
