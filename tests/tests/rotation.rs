//! Rotating the token pepper keeps credentials issued before it valid (even one unused over
//! two rotations), and credentials issued after it work as soon as the authorizer sees the
//! new version. Its own test binary:
//! cargo runs binaries one after another, so no other test issues tokens meanwhile.

use koppel_e2e::*;
use koppel_shared::Ctx;

#[tokio::test]
async fn old_and_new_credentials_both_work_after_a_pepper_rotation() {
    let d = demo();
    let con = s(&d["connector"]["id"]);
    let (_, old) = demo_token(con).name("before rotation").secret();
    let before = format!("Bearer {old}");
    assert_eq!(me(&[("Authorization", &before)]).await.status, 200);
    // Not used until both rotations are done: its version is then neither current nor
    // previous (a monthly batch job's key, say).
    let (_, dormant) = demo_token(con).name("dormant").secret();
    let dormant = format!("Bearer {dormant}");

    let ctx = Ctx::from_env().await.expect("KOPPEL_* settings");
    let sm = aws_sdk_secretsmanager::Client::new(&Ctx::sdk_config().await);
    sm.put_secret_value()
        .secret_id(&ctx.settings.pepper_secret_id)
        .secret_string(koppel_shared::ids::new_id("rotated"))
        .send()
        .await
        .expect("rotate the pepper");

    let (_, token) = demo_token(con).name("after rotation").secret();
    let after = format!("Bearer {token}");
    // The gateway reloads an unknown pepper version at most every 5 s.
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    let r = me(&[("Authorization", &after)]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = me(&[("Authorization", &before)]).await;
    assert_eq!(
        r.status, 200,
        "the previous pepper version stays valid: {}",
        r.body
    );

    // That use re-hashed the older credential, so a second rotation does not lock it out.
    sm.put_secret_value()
        .secret_id(&ctx.settings.pepper_secret_id)
        .secret_string(koppel_shared::ids::new_id("rotated"))
        .send()
        .await
        .expect("rotate again");
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    for (name, auth) in [("before", &before), ("after", &after)] {
        let r = me(&[("Authorization", auth)]).await;
        assert_eq!(r.status, 200, "{name} the first rotation: {}", r.body);
    }
    for round in ["first use", "re-hashed"] {
        let r = me(&[("Authorization", &dormant)]).await;
        assert_eq!(r.status, 200, "a dormant credential, {round}: {}", r.body);
    }
}
