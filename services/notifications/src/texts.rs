//! What notifications say, per kind and language (English, French, Italian, Danish,
//! Polish); `{name}` placeholders take the event's values. English is the fallback for
//! other languages and for kinds without a translation.

/// (template, language, title, body).
const TEMPLATES: &[(&str, &str, &str, &str)] = &[
    // share_published
    (
        "share_published",
        "en",
        "Your share was published on {network}",
        "See it at {url}",
    ),
    (
        "share_published",
        "fr",
        "Votre partage est publié sur {network}",
        "Voyez-le ici : {url}",
    ),
    (
        "share_published",
        "it",
        "La tua condivisione è stata pubblicata su {network}",
        "Guardala qui: {url}",
    ),
    (
        "share_published",
        "da",
        "Din deling er udgivet på {network}",
        "Se den her: {url}",
    ),
    (
        "share_published",
        "pl",
        "Twoje udostępnienie zostało opublikowane w {network}",
        "Zobacz je tutaj: {url}",
    ),
    // share_failed
    (
        "share_failed",
        "en",
        "Your share could not be published on {network}",
        "{reason}",
    ),
    (
        "share_failed",
        "fr",
        "Votre partage n'a pas pu être publié sur {network}",
        "{reason}",
    ),
    (
        "share_failed",
        "it",
        "Non è stato possibile pubblicare la tua condivisione su {network}",
        "{reason}",
    ),
    (
        "share_failed",
        "da",
        "Din deling kunne ikke udgives på {network}",
        "{reason}",
    ),
    (
        "share_failed",
        "pl",
        "Nie udało się opublikować Twojego udostępnienia w {network}",
        "{reason}",
    ),
    // account_needs_reconnect
    (
        "account_needs_reconnect",
        "en",
        "Reconnect your {network} account",
        "A share is waiting: {reason}",
    ),
    (
        "account_needs_reconnect",
        "fr",
        "Reconnectez votre compte {network}",
        "Un partage attend : {reason}",
    ),
    (
        "account_needs_reconnect",
        "it",
        "Ricollega il tuo account {network}",
        "Una condivisione è in attesa: {reason}",
    ),
    (
        "account_needs_reconnect",
        "da",
        "Forbind din {network}-konto igen",
        "En deling venter: {reason}",
    ),
    (
        "account_needs_reconnect",
        "pl",
        "Połącz ponownie konto {network}",
        "Udostępnienie czeka: {reason}",
    ),
    // account_expiring
    (
        "account_expiring",
        "en",
        "Reconnect your {network} account before {when}",
        "{network} asks you to sign in again every so often. Reconnect before {when} so that your scheduled shares go out.",
    ),
    (
        "account_expiring",
        "fr",
        "Reconnectez votre compte {network} avant le {when}",
        "{network} vous demande de vous reconnecter de temps en temps. Reconnectez-vous avant le {when} pour que vos partages programmés soient publiés.",
    ),
    (
        "account_expiring",
        "it",
        "Ricollega il tuo account {network} prima del {when}",
        "{network} chiede di accedere di nuovo di tanto in tanto. Ricollegati prima del {when} perché le condivisioni programmate vengano pubblicate.",
    ),
    (
        "account_expiring",
        "da",
        "Forbind din {network}-konto igen før {when}",
        "{network} beder dig logge ind igen med jævne mellemrum. Forbind igen før {when}, så dine planlagte delinger bliver udgivet.",
    ),
    (
        "account_expiring",
        "pl",
        "Połącz ponownie konto {network} przed {when}",
        "{network} co jakiś czas prosi o ponowne zalogowanie. Połącz konto przed {when}, aby zaplanowane udostępnienia zostały opublikowane.",
    ),
    // points_awarded
    (
        "points_awarded",
        "en",
        "You earned {points} points",
        "For a {action}. Your balance is {balance} points.",
    ),
    (
        "points_awarded",
        "fr",
        "Vous avez gagné {points} points",
        "Pour : {action}. Votre solde est de {balance} points.",
    ),
    (
        "points_awarded",
        "it",
        "Hai guadagnato {points} punti",
        "Per: {action}. Il tuo saldo è di {balance} punti.",
    ),
    (
        "points_awarded",
        "da",
        "Du har optjent {points} point",
        "For: {action}. Din saldo er {balance} point.",
    ),
    (
        "points_awarded",
        "pl",
        "Zdobywasz {points} pkt",
        "Za: {action}. Twoje saldo to {balance} pkt.",
    ),
    // points_milestone
    (
        "points_milestone",
        "en",
        "You reached {milestone} points",
        "Your shares have earned you {balance} points so far. Thank you for sharing!",
    ),
    (
        "points_milestone",
        "fr",
        "Vous avez atteint {milestone} points",
        "Vos partages vous ont rapporté {balance} points jusqu'ici. Merci de partager !",
    ),
    (
        "points_milestone",
        "it",
        "Hai raggiunto {milestone} punti",
        "Le tue condivisioni ti hanno fatto guadagnare {balance} punti finora. Grazie per la condivisione!",
    ),
    (
        "points_milestone",
        "da",
        "Du har nået {milestone} point",
        "Dine delinger har indtil nu givet dig {balance} point. Tak fordi du deler!",
    ),
    (
        "points_milestone",
        "pl",
        "Masz już {milestone} pkt",
        "Twoje udostępnienia przyniosły Ci dotąd {balance} pkt. Dziękujemy, że się dzielisz!",
    ),
    // badge_earned
    (
        "badge_earned",
        "en",
        "You earned the badge {badge}",
        "Thank you for sharing: see your badges in your profile.",
    ),
    (
        "badge_earned",
        "fr",
        "Vous avez obtenu le badge {badge}",
        "Merci de partager : retrouvez vos badges dans votre profil.",
    ),
    (
        "badge_earned",
        "it",
        "Hai ottenuto il badge {badge}",
        "Grazie per la condivisione: trovi i tuoi badge nel profilo.",
    ),
    (
        "badge_earned",
        "da",
        "Du har fået mærket {badge}",
        "Tak fordi du deler: se dine mærker i din profil.",
    ),
    (
        "badge_earned",
        "pl",
        "Zdobywasz odznakę {badge}",
        "Dziękujemy, że się dzielisz: odznaki znajdziesz w swoim profilu.",
    ),
    // submission_approved
    (
        "submission_approved",
        "en",
        "Your suggestion was approved",
        "It is now in the library for everyone to share.",
    ),
    (
        "submission_approved",
        "fr",
        "Votre proposition a été acceptée",
        "Elle est maintenant dans la bibliothèque, prête à être partagée par tous.",
    ),
    (
        "submission_approved",
        "it",
        "La tua proposta è stata approvata",
        "Ora è nella libreria e tutti possono condividerla.",
    ),
    (
        "submission_approved",
        "da",
        "Dit forslag er godkendt",
        "Det ligger nu i biblioteket, så alle kan dele det.",
    ),
    (
        "submission_approved",
        "pl",
        "Twoja propozycja została zatwierdzona",
        "Jest już w bibliotece i każdy może ją udostępnić.",
    ),
    // submission_rejected
    (
        "submission_rejected",
        "en",
        "Your suggestion was not approved",
        "{reason}",
    ),
    (
        "submission_rejected",
        "fr",
        "Votre proposition n'a pas été retenue",
        "{reason}",
    ),
    (
        "submission_rejected",
        "it",
        "La tua proposta non è stata approvata",
        "{reason}",
    ),
    (
        "submission_rejected",
        "da",
        "Dit forslag blev ikke godkendt",
        "{reason}",
    ),
    (
        "submission_rejected",
        "pl",
        "Twoja propozycja nie została zatwierdzona",
        "{reason}",
    ),
    // contest_won
    (
        "contest_won",
        "en",
        "You placed #{rank} in {contest}",
        "The contest {contest} is over: see the final board.",
    ),
    (
        "contest_won",
        "fr",
        "Vous êtes n°{rank} du concours {contest}",
        "Le concours {contest} est terminé : voyez le classement final.",
    ),
    (
        "contest_won",
        "it",
        "Sei al {rank}° posto in {contest}",
        "La gara {contest} è finita: guarda la classifica finale.",
    ),
    (
        "contest_won",
        "da",
        "Du blev nr. {rank} i {contest}",
        "Konkurrencen {contest} er slut: se den endelige stilling.",
    ),
    (
        "contest_won",
        "pl",
        "Zajmujesz {rank}. miejsce w {contest}",
        "Konkurs {contest} dobiegł końca: zobacz końcowy ranking.",
    ),
    // contest_started
    (
        "contest_started",
        "en",
        "A contest has begun: {contest}",
        "Counting {metric} until {ends}. Share what you like, in your own words.",
    ),
    (
        "contest_started",
        "fr",
        "Un concours commence : {contest}",
        "Il compte : {metric}, jusqu'au {ends}. Partagez ce qui vous plaît, avec vos mots.",
    ),
    (
        "contest_started",
        "it",
        "È iniziata una gara: {contest}",
        "Conta: {metric}, fino al {ends}. Condividi ciò che ti piace, con parole tue.",
    ),
    (
        "contest_started",
        "da",
        "En konkurrence er begyndt: {contest}",
        "Der tælles {metric} indtil {ends}. Del det, du kan lide, med dine egne ord.",
    ),
    (
        "contest_started",
        "pl",
        "Rozpoczął się konkurs: {contest}",
        "Liczymy: {metric}, do {ends}. Udostępniaj to, co lubisz, własnymi słowami.",
    ),
    // contest_ending
    (
        "contest_ending",
        "en",
        "{contest} ends soon",
        "The contest closes at {ends}: see where you stand on the board.",
    ),
    (
        "contest_ending",
        "fr",
        "{contest} se termine bientôt",
        "Le concours se termine le {ends} : voyez votre place au classement.",
    ),
    (
        "contest_ending",
        "it",
        "{contest} sta per finire",
        "La gara si chiude il {ends}: guarda la tua posizione in classifica.",
    ),
    (
        "contest_ending",
        "da",
        "{contest} slutter snart",
        "Konkurrencen slutter {ends}: se, hvor du står på listen.",
    ),
    (
        "contest_ending",
        "pl",
        "{contest} wkrótce się kończy",
        "Konkurs kończy się {ends}: sprawdź swoje miejsce w rankingu.",
    ),
    // new_content (with topics) and new_content_plain
    (
        "new_content",
        "en",
        "New to share: {title}",
        "A new post about {topics} is in your feed, ready for your own words.",
    ),
    (
        "new_content",
        "fr",
        "Nouveau à partager : {title}",
        "Un nouveau contenu sur {topics} vous attend dans votre fil, prêt pour vos propres mots.",
    ),
    (
        "new_content",
        "it",
        "Nuovo da condividere: {title}",
        "Un nuovo contenuto su {topics} è nel tuo feed, pronto per le tue parole.",
    ),
    (
        "new_content",
        "da",
        "Nyt at dele: {title}",
        "Et nyt opslag om {topics} ligger i dit feed, klar til dine egne ord.",
    ),
    (
        "new_content",
        "pl",
        "Nowość do udostępnienia: {title}",
        "Nowy wpis o {topics} czeka w Twoim kanale na Twoje własne słowa.",
    ),
    (
        "new_content_plain",
        "en",
        "New to share: {title}",
        "A new post is in your feed, ready for your own words.",
    ),
    (
        "new_content_plain",
        "fr",
        "Nouveau à partager : {title}",
        "Un nouveau contenu vous attend dans votre fil, prêt pour vos propres mots.",
    ),
    (
        "new_content_plain",
        "it",
        "Nuovo da condividere: {title}",
        "Un nuovo contenuto è nel tuo feed, pronto per le tue parole.",
    ),
    (
        "new_content_plain",
        "da",
        "Nyt at dele: {title}",
        "Et nyt opslag ligger i dit feed, klar til dine egne ord.",
    ),
    (
        "new_content_plain",
        "pl",
        "Nowość do udostępnienia: {title}",
        "Nowy wpis czeka w Twoim kanale na Twoje własne słowa.",
    ),
    // survey_waiting
    (
        "survey_waiting",
        "en",
        "A survey is waiting for you: {title}",
        "It takes a minute; your answers are anonymous.",
    ),
    (
        "survey_waiting",
        "fr",
        "Une enquête vous attend : {title}",
        "Cela prend une minute ; vos réponses sont anonymes.",
    ),
    (
        "survey_waiting",
        "it",
        "Un sondaggio ti aspetta: {title}",
        "Ci vuole un minuto; le tue risposte sono anonime.",
    ),
    (
        "survey_waiting",
        "da",
        "En undersøgelse venter på dig: {title}",
        "Det tager et minut; dine svar er anonyme.",
    ),
    (
        "survey_waiting",
        "pl",
        "Czeka na Ciebie ankieta: {title}",
        "To zajmie minutę; Twoje odpowiedzi są anonimowe.",
    ),
    // submission_waiting
    (
        "submission_waiting",
        "en",
        "A suggestion is waiting: {title}",
        "{author} suggested content for the library: approve it or turn it down with a reason.",
    ),
    (
        "submission_waiting",
        "fr",
        "Une proposition attend : {title}",
        "{author} propose un contenu pour la bibliothèque : acceptez-le ou refusez-le en donnant une raison.",
    ),
    (
        "submission_waiting",
        "it",
        "Una proposta è in attesa: {title}",
        "{author} ha proposto un contenuto per la libreria: approvalo o rifiutalo indicando il motivo.",
    ),
    (
        "submission_waiting",
        "da",
        "Et forslag venter: {title}",
        "{author} har foreslået indhold til biblioteket: godkend det, eller afvis det med en begrundelse.",
    ),
    (
        "submission_waiting",
        "pl",
        "Propozycja czeka: {title}",
        "{author} proponuje treść do biblioteki: zatwierdź ją lub odrzuć, podając powód.",
    ),
    // post_waiting_review
    (
        "post_waiting_review",
        "en",
        "A post is waiting for your review",
        "{actor} submitted post {post} for approval: approve it or ask for changes.",
    ),
    (
        "post_waiting_review",
        "fr",
        "Un contenu attend votre validation",
        "{actor} a soumis le contenu {post} : validez-le ou demandez des modifications.",
    ),
    (
        "post_waiting_review",
        "it",
        "Un contenuto attende la tua revisione",
        "{actor} ha inviato il contenuto {post} per l'approvazione: approvalo o chiedi modifiche.",
    ),
    (
        "post_waiting_review",
        "da",
        "Et opslag venter på din godkendelse",
        "{actor} har sendt opslaget {post} til godkendelse: godkend det, eller bed om ændringer.",
    ),
    (
        "post_waiting_review",
        "pl",
        "Wpis czeka na Twoją akceptację",
        "{actor} przesłał(a) wpis {post} do akceptacji: zatwierdź go lub poproś o zmiany.",
    ),
    // webhook_endpoint_disabled
    (
        "webhook_endpoint_disabled",
        "en",
        "A webhook endpoint was disabled",
        "Chorus stopped sending events to {url}: {reason}. Fix the receiver, enable the endpoint again and replay its failed messages.",
    ),
    (
        "webhook_endpoint_disabled",
        "fr",
        "Un point de terminaison webhook a été désactivé",
        "Chorus n'envoie plus d'événements à {url} : {reason}. Réparez le récepteur, réactivez le point de terminaison et renvoyez ses messages en échec.",
    ),
    (
        "webhook_endpoint_disabled",
        "it",
        "Un endpoint webhook è stato disattivato",
        "Chorus ha smesso di inviare eventi a {url}: {reason}. Ripara il ricevitore, riattiva l'endpoint e reinvia i messaggi non consegnati.",
    ),
    (
        "webhook_endpoint_disabled",
        "da",
        "Et webhook-endpoint er deaktiveret",
        "Chorus sender ikke længere hændelser til {url}: {reason}. Ret modtageren, aktivér endpointet igen, og send de fejlede beskeder igen.",
    ),
    (
        "webhook_endpoint_disabled",
        "pl",
        "Punkt końcowy webhooka został wyłączony",
        "Chorus przestał wysyłać zdarzenia do {url}: {reason}. Napraw odbiorcę, włącz ponownie punkt końcowy i ponów nieudane wiadomości.",
    ),
    // publishing_failure_rate
    (
        "publishing_failure_rate",
        "en",
        "Publishing is failing: {failed} of {total} shares in the last hours",
        "Shares are failing more than usual. Look at the failed shares' reasons (GET /v1/shares?status=failed): a network may be down, an app's credentials revoked or a limit reached.",
    ),
    (
        "publishing_failure_rate",
        "fr",
        "La publication échoue : {failed} partages sur {total} ces dernières heures",
        "Les partages échouent plus que d'habitude. Consultez les raisons des échecs (GET /v1/shares?status=failed) : un réseau peut être en panne, les identifiants d'une application révoqués ou une limite atteinte.",
    ),
    (
        "publishing_failure_rate",
        "it",
        "La pubblicazione non riesce: {failed} condivisioni su {total} nelle ultime ore",
        "Le condivisioni falliscono più del solito. Controlla i motivi (GET /v1/shares?status=failed): una rete potrebbe essere inattiva, le credenziali di un'app revocate o un limite raggiunto.",
    ),
    (
        "publishing_failure_rate",
        "da",
        "Udgivelse fejler: {failed} af {total} delinger de seneste timer",
        "Delinger fejler mere end normalt. Se årsagerne (GET /v1/shares?status=failed): et netværk kan være nede, en apps adgang tilbagekaldt eller en grænse nået.",
    ),
    (
        "publishing_failure_rate",
        "pl",
        "Publikowanie się nie udaje: {failed} z {total} udostępnień w ostatnich godzinach",
        "Udostępnienia zawodzą częściej niż zwykle. Sprawdź przyczyny (GET /v1/shares?status=failed): sieć może nie działać, dane aplikacji mogły zostać cofnięte lub osiągnięto limit.",
    ),
];

/// The primary language subtag (`fr` of `fr-CA`), lower-case.
pub fn primary(language: &str) -> String {
    language
        .split(['-', '_'])
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase()
}

fn fill(template: &str, params: &[(&str, String)]) -> String {
    let mut text = template.to_string();
    for (name, value) in params {
        text = text.replace(&format!("{{{name}}}"), value);
    }
    text
}

/// The title and body of `template` in `language` (English when there is no translation).
pub fn render(template: &str, language: &str, params: &[(&str, String)]) -> (String, String) {
    let language = primary(language);
    let found = TEMPLATES
        .iter()
        .find(|(name, lang, _, _)| *name == template && *lang == language)
        .or_else(|| {
            TEMPLATES
                .iter()
                .find(|(name, lang, _, _)| *name == template && *lang == "en")
        });
    match found {
        Some((_, _, title, body)) => (fill(title, params), fill(body, params)),
        None => (template.to_string(), String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_has_every_language_and_the_same_placeholders() {
        let placeholders = |text: &str| {
            let mut found: Vec<String> = text
                .split('{')
                .skip(1)
                .filter_map(|rest| rest.split('}').next())
                .map(str::to_string)
                .collect();
            found.sort();
            found.dedup();
            found
        };
        for (name, lang, title, body) in TEMPLATES.iter().filter(|row| row.1 == "en") {
            for other in ["fr", "it", "da", "pl"] {
                let (_, _, other_title, other_body) = TEMPLATES
                    .iter()
                    .find(|row| row.0 == *name && row.1 == other)
                    .unwrap_or_else(|| panic!("{name} has no {other} text"));
                let mut english = placeholders(title);
                english.extend(placeholders(body));
                english.sort();
                english.dedup();
                let mut translated = placeholders(other_title);
                translated.extend(placeholders(other_body));
                translated.sort();
                translated.dedup();
                assert_eq!(english, translated, "{name} {lang}/{other}");
            }
        }
    }

    #[test]
    fn languages_fall_back_to_english() {
        let params = [("badge", "First share".to_string())];
        assert_eq!(
            render("badge_earned", "fr-CA", &params).0,
            "Vous avez obtenu le badge First share"
        );
        assert_eq!(
            render("badge_earned", "ja", &params).0,
            "You earned the badge First share"
        );
    }
}
