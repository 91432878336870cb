//! SCIM 2.0 provisioning as Okta and Entra ID call it: users and groups created, replaced,
//! patched, filtered and paged; deactivation stops sharing; deletion erases; tenants apart.

use crate::harness::{Backend, Harness, eventually};
use chorus_api::identity::ApiKeyCreated;
use chorus_api::scheduling::Share;
use chorus_kit::Role;
use serde_json::{Value, json};
use std::time::Duration;

const SCIM: &str = "application/scim+json";

/// One SCIM call: status, headers and body.
async fn scim(
    harness: &Harness,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut request = harness
        .api
        .http
        .request(method, format!("{}/scim/v2{path}", harness.api.base_url))
        .header("Accept", SCIM);
    if !token.is_empty() {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.header("Content-Type", SCIM).body(body.to_string());
    }
    let response = request.send().await.expect("gateway answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.unwrap();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|_| json!(String::from_utf8_lossy(&bytes)))
    };
    (status, headers, body)
}

/// An administrator's API key, as the identity provider is configured with.
async fn provisioning_key(harness: &Harness, admin: &str) -> String {
    let created: ApiKeyCreated = harness
        .api
        .post(
            "/v1/api-keys",
            admin,
            json!({"user_id": "carol", "name": "Okta provisioning", "roles": ["admin"]}),
        )
        .await
        .unwrap();
    created.key
}

fn okta_user(user_name: &str, given: &str, family: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": user_name,
        "name": {"givenName": given, "familyName": family},
        "emails": [{"primary": true, "value": user_name, "type": "work"}],
        "displayName": format!("{given} {family}"),
        "locale": "fr-FR",
        "timezone": "Europe/Paris",
        "active": true,
        "groups": [],
        "password": "ignored-by-chorus",
    })
}

async fn provisioning_works(backend: Backend) {
    let harness = Harness::start(backend, &[]).await;
    let admin = harness.tenant("acme", &[]).await;
    let key = provisioning_key(&harness, &admin).await;
    let post = harness.published_post(&admin, "Our new office").await;
    use reqwest::Method as M;

    // Okta creates a user; userName becomes the id, so OIDC tokens name the same person.
    let (status, headers, alice) = scim(
        &harness,
        M::POST,
        "/Users",
        &key,
        Some(okta_user("alice@acme.example", "Alice", "Martin")),
    )
    .await;
    assert_eq!(status, 201, "{alice}");
    assert_eq!(headers["content-type"], SCIM);
    assert_eq!(alice["id"], "alice@acme.example");
    assert_eq!(alice["displayName"], "Alice Martin");
    assert_eq!(alice["active"], true);
    assert_eq!(alice["roles"], json!([{"value": "advocate"}]));
    assert_eq!(alice["preferredLanguage"], "fr");
    assert_eq!(alice["meta"]["resourceType"], "User");
    let location = headers["location"].to_str().unwrap().to_string();
    assert!(
        location.ends_with("/scim/v2/Users/alice@acme.example"),
        "{location}"
    );
    assert!(alice.get("password").is_none());

    // The same userName again is a uniqueness conflict; bad input names its attribute.
    let (status, _, error) = scim(
        &harness,
        M::POST,
        "/Users",
        &key,
        Some(okta_user("alice@acme.example", "Alice", "Again")),
    )
    .await;
    assert_eq!(status, 409, "{error}");
    assert_eq!(error["scimType"], "uniqueness");
    assert_eq!(
        error["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:Error"])
    );
    for (body, says) in [
        (
            json!({"schemas": [], "name": {"givenName": "X"}}),
            "userName",
        ),
        (
            json!({"userName": "x@acme.example", "timezone": "Mars/Olympus"}),
            "timezone",
        ),
        (
            json!({"userName": "x@acme.example", "roles": [{"value": "operator"}]}),
            "roles",
        ),
        (json!({"userName": "no-mail"}), "emails"),
        (json!(["not", "an", "object"]), "object"),
    ] {
        let (status, _, error) = scim(&harness, M::POST, "/Users", &key, Some(body)).await;
        assert_eq!(status, 400, "{error}");
        assert_eq!(error["scimType"], "invalidValue", "{error}");
        assert!(error["detail"].as_str().unwrap().contains(says), "{error}");
    }

    // Entra ID creates users with its own externalId and the enterprise extension.
    for (user_name, external) in [
        ("bob@acme.example", "e-bob"),
        ("dan@acme.example", "e-dan"),
        ("eve@acme.example", "e-eve"),
    ] {
        let body = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
            "externalId": external,
            "userName": user_name,
            "active": true,
            "displayName": user_name.split('@').next().unwrap(),
            "emails": [{"primary": true, "type": "work", "value": user_name}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Sales"},
        });
        let (status, _, created) = scim(&harness, M::POST, "/Users", &key, Some(body)).await;
        assert_eq!(status, 201, "{created}");
        assert_eq!(
            created["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["department"],
            "Sales"
        );
    }

    // Filters as the providers send them, and pages.
    let (status, _, found) = scim(
        &harness,
        M::GET,
        "/Users?filter=userName%20eq%20%22alice%40acme.example%22",
        &key,
        None,
    )
    .await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["totalResults"], 1);
    assert_eq!(found["Resources"][0]["id"], "alice@acme.example");
    let (_, _, found) = scim(
        &harness,
        M::GET,
        "/Users?filter=externalId%20eq%20%22e-dan%22",
        &key,
        None,
    )
    .await;
    assert_eq!(found["Resources"][0]["userName"], "dan@acme.example");
    let (_, _, none) = scim(
        &harness,
        M::GET,
        "/Users?filter=userName%20eq%20%22nobody%40acme.example%22",
        &key,
        None,
    )
    .await;
    assert_eq!(none["totalResults"], 0);
    assert_eq!(none["Resources"], json!([]));
    let (status, _, error) = scim(
        &harness,
        M::GET,
        "/Users?filter=userName%20co%20%22a%22",
        &key,
        None,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(error["scimType"], "invalidFilter");
    // carol (created through /v1/users) and the four provisioned users.
    let (_, _, page) = scim(&harness, M::GET, "/Users?startIndex=2&count=2", &key, None).await;
    assert_eq!(page["totalResults"], 5, "{page}");
    assert_eq!(page["startIndex"], 2);
    assert_eq!(page["itemsPerPage"], 2);
    let (_, _, last) = scim(&harness, M::GET, "/Users?startIndex=5&count=2", &key, None).await;
    assert_eq!(last["itemsPerPage"], 1);
    // A start past any list (even past what a database offset holds): an empty page.
    for start in ["6", "10000000000000000000", "18446744073709551615"] {
        let (status, _, beyond) = scim(
            &harness,
            M::GET,
            &format!("/Users?startIndex={start}"),
            &key,
            None,
        )
        .await;
        assert_eq!(status, 200, "{start}: {beyond}");
        assert_eq!(beyond["itemsPerPage"], 0, "{beyond}");
        assert_eq!(beyond["totalResults"], 5, "{beyond}");
    }
    let mut seen: Vec<String> = Vec::new();
    for start in [1, 3, 5] {
        let (_, _, page) = scim(
            &harness,
            M::GET,
            &format!("/Users?startIndex={start}&count=2"),
            &key,
            None,
        )
        .await;
        seen.extend(
            page["Resources"]
                .as_array()
                .unwrap()
                .iter()
                .map(|user| user["id"].as_str().unwrap().to_string()),
        );
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 5, "pages neither skip nor repeat: {seen:?}");

    // Okta replaces the user: the profile follows everywhere.
    let mut replaced = okta_user("alice@acme.example", "Alice", "Durand");
    replaced["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"] =
        json!({"department": "Marketing"});
    let (status, _, alice) = scim(
        &harness,
        M::PUT,
        "/Users/alice@acme.example",
        &key,
        Some(replaced),
    )
    .await;
    assert_eq!(status, 200, "{alice}");
    assert_eq!(alice["displayName"], "Alice Durand");
    let alice_token = harness.token("acme", "alice@acme.example", &[Role::Advocate]);
    let me: Value = harness.api.get("/v1/me", &alice_token).await.unwrap();
    assert_eq!(me["display_name"], "Alice Durand");
    assert_eq!(me["department"], "Marketing");

    // Alice schedules a share; then Entra ID deactivates her ("False" as a string).
    let account = harness
        .api
        .connect_linkedin(&alice_token, "alice-li")
        .await
        .unwrap();
    let share: Share = harness
        .api
        .post(
            "/v1/shares",
            &alice_token,
            json!({"post_id": post.id, "account_id": account.id, "caption": "Come and see",
                   "scheduled_at": chrono::Utc::now() + chrono::Duration::hours(3)}),
        )
        .await
        .unwrap();
    let deactivate = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "Replace", "path": "active", "value": "False"}]});
    let (status, _, alice) = scim(
        &harness,
        M::PATCH,
        "/Users/alice@acme.example",
        &key,
        Some(deactivate),
    )
    .await;
    assert_eq!(status, 200, "{alice}");
    assert_eq!(alice["active"], false);
    let refused = eventually(
        Duration::from_secs(10),
        "a deactivated user is refused",
        || async {
            harness
                .api
                .get::<Value>("/v1/me", &alice_token)
                .await
                .err()
                .filter(|e| e.status == 403)
        },
    )
    .await;
    assert!(
        refused.body["detail"]
            .as_str()
            .unwrap()
            .contains("deactivated"),
        "{refused}"
    );
    // Okta reactivates (replace without a path): she may use Chorus again.
    let reactivate = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "value": {"active": true}}]});
    let (status, _, alice) = scim(
        &harness,
        M::PATCH,
        "/Users/alice@acme.example",
        &key,
        Some(reactivate),
    )
    .await;
    assert_eq!(status, 200, "{alice}");
    eventually(
        Duration::from_secs(10),
        "a reactivated user is served",
        || async { harness.api.get::<Value>("/v1/me", &alice_token).await.ok() },
    )
    .await;

    // Her share stayed cancelled, with the reason shown to her.
    let path = format!("/v1/shares/{}", share.id);
    let cancelled: Share = eventually(
        Duration::from_secs(15),
        "her pending share is cancelled",
        || async {
            harness
                .api
                .get::<Share>(&path, &alice_token)
                .await
                .ok()
                .filter(|s| s.status == chorus_api::scheduling::ShareStatus::Cancelled)
        },
    )
    .await;
    assert!(
        cancelled
            .failure_reason
            .unwrap_or_default()
            .contains("deactivated")
    );

    // Entra ID patches attributes by path, including a filtered one and the extension.
    let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [
        {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "bob.b@acme.example"},
        {"op": "Replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": "Support"},
        {"op": "Add", "path": "displayName", "value": "Bob Bernard"},
    ]});
    let (status, _, bob) = scim(
        &harness,
        M::PATCH,
        "/Users/bob@acme.example",
        &key,
        Some(patch),
    )
    .await;
    assert_eq!(status, 200, "{bob}");
    assert_eq!(bob["emails"][0]["value"], "bob.b@acme.example");
    assert_eq!(bob["displayName"], "Bob Bernard");
    assert_eq!(
        bob["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["department"],
        "Support"
    );
    let (status, _, error) = scim(
        &harness,
        M::PATCH,
        "/Users/bob@acme.example",
        &key,
        Some(
            json!({"Operations": [{"op": "Replace", "path": "timezone", "value": "Nowhere/Land"}]}),
        ),
    )
    .await;
    assert_eq!(status, 400, "{error}");
    let (_, _, bob) = scim(&harness, M::GET, "/Users/bob@acme.example", &key, None).await;
    assert_eq!(bob["timezone"], "UTC", "a refused patch changes nothing");

    // Groups: create with members, add and remove the ways Okta and Entra ID do.
    let (status, _, group) = scim(
        &harness,
        M::POST,
        "/Groups",
        &key,
        Some(json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Sales EMEA",
        "members": [{"value": "alice@acme.example"}, {"value": "bob@acme.example"}]})),
    )
    .await;
    assert_eq!(status, 201, "{group}");
    let group_id = group["id"].as_str().unwrap().to_string();
    assert_eq!(group["members"].as_array().unwrap().len(), 2);
    let (_, _, alice) = scim(&harness, M::GET, "/Users/alice@acme.example", &key, None).await;
    assert_eq!(alice["groups"][0]["display"], "Sales EMEA");
    let (status, _, error) = scim(
        &harness,
        M::POST,
        "/Groups",
        &key,
        Some(json!({"displayName": "Ghosts", "members": [{"value": "nobody"}]})),
    )
    .await;
    assert_eq!(status, 400, "{error}");
    let group_path = format!("/Groups/{group_id}");
    let (status, _, _) = scim(&harness, M::PATCH, &group_path, &key, Some(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [
        {"op": "add", "path": "members", "value": [{"value": "dan@acme.example"}, {"value": "eve@acme.example"}]},
        {"op": "remove", "path": "members[value eq \"bob@acme.example\"]"},
    ]}))).await;
    assert_eq!(status, 200);
    let (status, _, group) = scim(
        &harness,
        M::PATCH,
        &group_path,
        &key,
        Some(
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [
                {"op": "Remove", "path": "members", "value": [{"value": "eve@acme.example"}]},
                {"op": "Replace", "path": "displayName", "value": "Sales Europe"},
            ]}),
        ),
    )
    .await;
    assert_eq!(status, 200, "{group}");
    let members: Vec<&str> = group["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_str().unwrap())
        .collect();
    assert_eq!(members, ["alice@acme.example", "dan@acme.example"]);
    let (_, _, found) = scim(
        &harness,
        M::GET,
        "/Groups?filter=displayName%20eq%20%22Sales%20Europe%22&excludedAttributes=members",
        &key,
        None,
    )
    .await;
    assert_eq!(found["totalResults"], 1);
    assert!(found["Resources"][0].get("members").is_none());
    let (status, _, group) = scim(
        &harness,
        M::PUT,
        &group_path,
        &key,
        Some(json!({"displayName": "Sales Europe", "members": [{"value": "eve@acme.example"}]})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(group["members"][0]["value"], "eve@acme.example");

    // Another tenant's provisioning sees none of it; non-admins and strangers are refused.
    let globex_admin = harness.tenant("globex", &[]).await;
    let globex_key = provisioning_key(&harness, &globex_admin).await;
    let (status, _, _) = scim(
        &harness,
        M::GET,
        "/Users/alice@acme.example",
        &globex_key,
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (status, _, _) = scim(
        &harness,
        M::PATCH,
        &group_path,
        &globex_key,
        Some(json!({"Operations": [{"op": "replace", "path": "displayName", "value": "Mine"}]})),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _, _) = scim(
        &harness,
        M::DELETE,
        "/Users/alice@acme.example",
        &globex_key,
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (_, _, theirs) = scim(&harness, M::GET, "/Users", &globex_key, None).await;
    assert_eq!(
        theirs["totalResults"], 1,
        "only globex's own admin: {theirs}"
    );
    let (status, _, error) = scim(&harness, M::GET, "/Users", &alice_token, None).await;
    assert_eq!(status, 403, "{error}");
    assert_eq!(
        error["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:Error"])
    );
    let (status, headers, _) = scim(&harness, M::GET, "/Users", "", None).await;
    assert_eq!(status, 401);
    assert!(headers.contains_key("www-authenticate"));

    // Deleting a user erases them; the userName may then be provisioned afresh.
    let (status, _, _) = scim(&harness, M::DELETE, "/Users/eve@acme.example", &key, None).await;
    assert_eq!(status, 204);
    let (status, _, _) = scim(&harness, M::GET, "/Users/eve@acme.example", &key, None).await;
    assert_eq!(status, 404);
    let (_, _, group) = scim(&harness, M::GET, &group_path, &key, None).await;
    assert_eq!(
        group["members"],
        json!([]),
        "an erased user leaves their groups"
    );
    let (status, _, _) = scim(
        &harness,
        M::POST,
        "/Users",
        &key,
        Some(okta_user("eve@acme.example", "Eve", "Again")),
    )
    .await;
    assert_eq!(status, 201);
    let (status, _, _) = scim(&harness, M::DELETE, &group_path, &key, None).await;
    assert_eq!(status, 204);
    let (status, _, _) = scim(&harness, M::GET, &group_path, &key, None).await;
    assert_eq!(status, 404);

    // The provisioning key's own administrator cannot lock themselves out.
    let lock_out = json!({"Operations": [{"op": "replace", "path": "active", "value": false}]});
    let (status, _, error) = scim(&harness, M::PATCH, "/Users/carol", &key, Some(lock_out)).await;
    assert_eq!(status, 409, "{error}");
    let (status, _, _) = scim(&harness, M::DELETE, "/Users/carol", &key, None).await;
    assert_eq!(status, 409);

    let (status, _, config) = scim(&harness, M::GET, "/ServiceProviderConfig", &key, None).await;
    assert_eq!(status, 200);
    assert_eq!(config["patch"]["supported"], true);
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scim_provisioning_on_sqlite() {
    provisioning_works(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scim_provisioning_on_postgres() {
    provisioning_works(Backend::Postgres).await;
}
