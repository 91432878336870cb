//! The demo company: its places, departments, people and content library.

/// A city the company has an office in: its language and time zone.
pub struct Place {
    pub city: &'static str,
    pub language: &'static str,
    pub time_zone: &'static str,
}

pub const PLACES: &[Place] = &[
    Place {
        city: "paris",
        language: "fr",
        time_zone: "Europe/Paris",
    },
    Place {
        city: "lyon",
        language: "fr",
        time_zone: "Europe/Paris",
    },
    Place {
        city: "berlin",
        language: "de",
        time_zone: "Europe/Berlin",
    },
    Place {
        city: "madrid",
        language: "es",
        time_zone: "Europe/Madrid",
    },
    Place {
        city: "milan",
        language: "it",
        time_zone: "Europe/Rome",
    },
    Place {
        city: "warsaw",
        language: "pl",
        time_zone: "Europe/Warsaw",
    },
    Place {
        city: "london",
        language: "en",
        time_zone: "Europe/London",
    },
    Place {
        city: "new-york",
        language: "en",
        time_zone: "America/New_York",
    },
    Place {
        city: "singapore",
        language: "en",
        time_zone: "Asia/Singapore",
    },
];

pub const DEPARTMENTS: &[&str] = &[
    "sales",
    "engineering",
    "marketing",
    "hr",
    "support",
    "finance",
];

/// First names per language, for display names.
pub fn first_names(language: &str) -> &'static [&'static str] {
    match language {
        "fr" => &[
            "Camille", "Louis", "Chloé", "Hugo", "Léa", "Nathan", "Inès", "Jules",
        ],
        "de" => &[
            "Lena", "Jonas", "Mia", "Felix", "Hannah", "Lukas", "Emma", "Paul",
        ],
        "es" => &[
            "Lucía", "Mateo", "Sofía", "Pablo", "Martina", "Diego", "Elena", "Álvaro",
        ],
        "it" => &[
            "Giulia", "Lorenzo", "Chiara", "Matteo", "Sara", "Davide", "Alice", "Marco",
        ],
        "pl" => &[
            "Zuzanna", "Jakub", "Julia", "Szymon", "Maja", "Kacper", "Hanna", "Filip",
        ],
        _ => &[
            "Olivia", "James", "Amelia", "Noah", "Priya", "Wei", "Grace", "Daniel",
        ],
    }
}

pub const LAST_INITIALS: &str = "ABCDEFGHJKLMNPRSTVW";

/// Openers advocates put before their own words, per language.
pub fn openers(language: &str) -> &'static [&'static str] {
    match language {
        "fr" => &[
            "Fier de mon équipe !",
            "À lire :",
            "C'est pour ça que j'aime travailler ici.",
            "On y est !",
        ],
        "de" => &[
            "Stolz auf mein Team!",
            "Lesenswert:",
            "Deshalb arbeite ich gern hier.",
            "Es ist soweit!",
        ],
        "es" => &[
            "¡Orgullosa de mi equipo!",
            "Merece la pena:",
            "Por esto me gusta trabajar aquí.",
            "¡Ya está aquí!",
        ],
        "it" => &[
            "Orgoglioso del mio team!",
            "Da leggere:",
            "Ecco perché amo lavorare qui.",
            "Ci siamo!",
        ],
        "pl" => &[
            "Dumny z mojego zespołu!",
            "Warto przeczytać:",
            "Dlatego lubię tu pracować.",
            "Już jest!",
        ],
        _ => &[
            "Proud of my team!",
            "Worth a read:",
            "This is why I love working here.",
            "It's happening!",
        ],
    }
}

/// One piece of the content library: English first, then its translations.
pub struct Piece {
    pub content_type: &'static str,
    pub topics: &'static [&'static str],
    pub link: &'static str,
    /// `(language, title, commentary)`; the first is the post's own language.
    pub texts: &'static [(&'static str, &'static str, &'static str)],
    /// A shorter suggested caption for X.
    pub x_caption: Option<&'static str>,
    /// Only these departments see it (empty: everyone).
    pub departments: &'static [&'static str],
    /// Published by the second curator (HR) instead of marketing.
    pub by_hr: bool,
}

pub const LIBRARY: &[Piece] = &[
    Piece {
        content_type: "employer_branding",
        topics: &["jobs"],
        link: "https://careers.demo.example/lyon?team=engineering",
        texts: &[
            (
                "en",
                "We are hiring in Lyon",
                "Our Lyon team is growing: 12 open roles in engineering, hybrid, English-speaking.",
            ),
            (
                "fr",
                "Nous recrutons à Lyon",
                "Notre équipe lyonnaise grandit : 12 postes ouverts en ingénierie, en hybride.",
            ),
            (
                "de",
                "Wir stellen in Lyon ein",
                "Unser Team in Lyon wächst: 12 offene Stellen in der Entwicklung, hybrid.",
            ),
            (
                "es",
                "Contratamos en Lyon",
                "Nuestro equipo de Lyon crece: 12 puestos de ingeniería, en modo híbrido.",
            ),
            (
                "it",
                "Assumiamo a Lione",
                "Il nostro team di Lione cresce: 12 posizioni aperte in ingegneria, ibride.",
            ),
            (
                "pl",
                "Rekrutujemy w Lyonie",
                "Nasz zespół w Lyonie rośnie: 12 otwartych stanowisk inżynierskich.",
            ),
        ],
        x_caption: Some("12 engineering roles open in Lyon, hybrid. Come build with us! #hiring"),
        departments: &[],
        by_hr: true,
    },
    Piece {
        content_type: "brand",
        topics: &["product"],
        link: "https://www.demo.example/launch/orbit",
        texts: &[
            (
                "en",
                "Meet Orbit",
                "Orbit is here: our new platform brings every team's data together in one place.",
            ),
            (
                "fr",
                "Voici Orbit",
                "Orbit est là : notre nouvelle plateforme réunit les données de toutes les équipes.",
            ),
            (
                "de",
                "Das ist Orbit",
                "Orbit ist da: Unsere neue Plattform bringt die Daten aller Teams zusammen.",
            ),
            (
                "es",
                "Os presentamos Orbit",
                "Orbit ya está aquí: nuestra nueva plataforma une los datos de todos los equipos.",
            ),
            (
                "it",
                "Ecco Orbit",
                "Orbit è arrivato: la nostra nuova piattaforma riunisce i dati di tutti i team.",
            ),
            (
                "pl",
                "Poznajcie Orbit",
                "Orbit już jest: nasza nowa platforma łączy dane wszystkich zespołów.",
            ),
        ],
        x_caption: Some("Orbit is live: every team's data, one place. #launch"),
        departments: &[],
        by_hr: false,
    },
    Piece {
        content_type: "industry_insight",
        topics: &["industry"],
        link: "https://insights.example.org/2027/data-residency",
        texts: &[
            (
                "en",
                "Why data residency matters",
                "An industry analysis of data residency rules across Europe, worth reading before any customer call.",
            ),
            (
                "fr",
                "Pourquoi la localisation des données compte",
                "Une analyse des règles de localisation des données en Europe, à lire avant tout rendez-vous client.",
            ),
            (
                "de",
                "Warum Datenresidenz zählt",
                "Eine Branchenanalyse der Regeln zur Datenresidenz in Europa, lesenswert vor jedem Kundengespräch.",
            ),
            (
                "es",
                "Por qué importa la residencia de datos",
                "Un análisis del sector sobre las reglas de residencia de datos en Europa.",
            ),
            (
                "it",
                "Perché conta la residenza dei dati",
                "Un'analisi di settore sulle regole di residenza dei dati in Europa.",
            ),
            (
                "pl",
                "Dlaczego lokalizacja danych ma znaczenie",
                "Analiza branżowa zasad lokalizacji danych w Europie, warta lektury.",
            ),
        ],
        x_caption: None,
        departments: &[],
        by_hr: false,
    },
    Piece {
        content_type: "event",
        topics: &["events"],
        link: "https://events.demo.example/berlin-summit",
        texts: &[
            (
                "en",
                "Join us at the Berlin summit",
                "Meet our experts at booth 42 on 4 December, with live demos every hour.",
            ),
            (
                "fr",
                "Rejoignez-nous au sommet de Berlin",
                "Retrouvez nos experts au stand 42 le 4 décembre, démos toutes les heures.",
            ),
            (
                "de",
                "Treffen Sie uns beim Berlin-Gipfel",
                "Unsere Fachleute erwarten Sie am 4. Dezember an Stand 42, stündlich Live-Demos.",
            ),
            (
                "es",
                "Nos vemos en la cumbre de Berlín",
                "Conoce a nuestros expertos en el stand 42 el 4 de diciembre.",
            ),
            (
                "it",
                "Vieni al summit di Berlino",
                "Incontra i nostri esperti allo stand 42 il 4 dicembre, demo ogni ora.",
            ),
            (
                "pl",
                "Spotkajmy się na szczycie w Berlinie",
                "Nasi eksperci czekają na stoisku 42 4 grudnia.",
            ),
        ],
        x_caption: Some("Berlin summit, 4 Dec, booth 42: live demos every hour. #BerlinSummit"),
        departments: &[],
        by_hr: false,
    },
    Piece {
        content_type: "csr",
        topics: &["csr"],
        link: "https://www.demo.example/impact/trees",
        texts: &[
            (
                "en",
                "10,000 trees planted",
                "Our reforestation programme reached its first milestone this autumn, with 300 colleagues volunteering.",
            ),
            (
                "fr",
                "10 000 arbres plantés",
                "Notre programme de reforestation a franchi son premier cap cet automne, avec 300 bénévoles.",
            ),
            (
                "de",
                "10.000 Bäume gepflanzt",
                "Unser Aufforstungsprogramm hat diesen Herbst sein erstes Ziel erreicht, mit 300 Freiwilligen.",
            ),
            (
                "es",
                "10.000 árboles plantados",
                "Nuestro programa de reforestación alcanzó su primer hito este otoño.",
            ),
            (
                "it",
                "10.000 alberi piantati",
                "Il nostro programma di riforestazione ha raggiunto il primo traguardo.",
            ),
            (
                "pl",
                "10 000 posadzonych drzew",
                "Nasz program zalesiania osiągnął tej jesieni pierwszy cel.",
            ),
        ],
        x_caption: Some("10,000 trees planted by 300 colleagues this autumn. #sustainability"),
        departments: &[],
        by_hr: true,
    },
    Piece {
        content_type: "company_news",
        topics: &["news"],
        link: "https://news.demo.example/q3-results",
        texts: &[
            (
                "en",
                "A record quarter",
                "Revenue up 18% year on year: thank you to every one of our teams and customers.",
            ),
            (
                "fr",
                "Un trimestre record",
                "Chiffre d'affaires en hausse de 18 % sur un an : merci à toutes nos équipes.",
            ),
            (
                "de",
                "Ein Rekordquartal",
                "Umsatz plus 18 % im Jahresvergleich: Danke an alle Teams und Kunden.",
            ),
            (
                "es",
                "Un trimestre récord",
                "Ingresos un 18 % por encima del año pasado: gracias a todos los equipos.",
            ),
            (
                "it",
                "Un trimestre record",
                "Ricavi in crescita del 18% su base annua: grazie a tutti i team.",
            ),
            (
                "pl",
                "Rekordowy kwartał",
                "Przychody wyższe o 18% rok do roku: dziękujemy wszystkim zespołom.",
            ),
        ],
        x_caption: None,
        departments: &[],
        by_hr: false,
    },
    Piece {
        content_type: "award",
        topics: &["jobs", "culture"],
        link: "https://news.demo.example/best-employer",
        texts: &[
            (
                "en",
                "Best employer award",
                "Voted one of the best places to work in Europe for the third year running.",
            ),
            (
                "fr",
                "Prix du meilleur employeur",
                "Élus parmi les meilleurs employeurs d'Europe pour la troisième année.",
            ),
            (
                "de",
                "Auszeichnung als bester Arbeitgeber",
                "Zum dritten Mal in Folge unter den besten Arbeitgebern Europas.",
            ),
            (
                "es",
                "Premio al mejor empleador",
                "Elegidos entre los mejores lugares para trabajar de Europa por tercer año.",
            ),
            (
                "it",
                "Premio miglior datore di lavoro",
                "Tra i migliori posti di lavoro in Europa per il terzo anno di fila.",
            ),
            (
                "pl",
                "Nagroda dla najlepszego pracodawcy",
                "Po raz trzeci wśród najlepszych miejsc pracy w Europie.",
            ),
        ],
        x_caption: None,
        departments: &[],
        by_hr: true,
    },
    Piece {
        content_type: "event",
        topics: &["events", "engineering"],
        link: "https://events.demo.example/warsaw-rust-meetup",
        texts: &[
            (
                "en",
                "Engineering meetup in Warsaw",
                "Our Warsaw office hosts the Rust meetup on 11 December: talks, pizza and open positions.",
            ),
            (
                "pl",
                "Meetup inżynierski w Warszawie",
                "Nasze biuro w Warszawie gości meetup Rust 11 grudnia: prelekcje, pizza i rekrutacja.",
            ),
        ],
        x_caption: Some("Rust meetup at our Warsaw office, 11 Dec. Talks, pizza, jobs. #rustlang"),
        departments: &["engineering"],
        by_hr: false,
    },
];
