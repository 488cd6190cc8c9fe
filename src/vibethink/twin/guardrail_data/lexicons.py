"""Content-rating and abuse lexicons (English and Spanish), in normalised form.

Levels follow the twin's `contentRating`: a term of level L is acceptable for a twin rated L or above.
G = 0, PG = 1, PG-13 = 2, R = 3; NEVER (4) is refused at every rating.
Single words are matched as whole tokens (plural forms are added by the rules); phrases as regexes.
Words that are everyday football talk in one dialect ("crack", "polla", "coger", "Coke") stay out.
"""

from __future__ import annotations


def _words(text: str) -> list[str]:
    return text.split()


G, PG, PG13, R, NEVER = 0, 1, 2, 3, 4

RATING_LEVELS: dict[str, int] = {"G": G, "PG": PG, "PG-13": PG13, "PG13": PG13, "R": R}

# (category, level) -> words
RATING_WORDS: dict[tuple[str, int], list[str]] = {
    ("profanity", PG): _words(
        "damn dammit damned goddamn crap crappy bloody bugger freaking frickin friggin pissed "
        "maldito maldita malditos malditas diablos"
    ),
    ("profanity", PG13): _words(
        "shit shitty bullshit horseshit ass asshole arse arsehole bitch bitches bastard piss dick "
        "douche douchebag jackass dumbass badass mierda mierdas cabron cabrona cabrones carajo "
        "joder jodido jodida jodidos culo pendejo pendeja pendejos gilipollas pinche hostia hostias "
        "huevon boludo capullo"
    ),
    ("profanity", R): _words(
        "fuck fucks fucking fucked fucker fuckers motherfucker motherfucking fck fuk fking wtf stfu "
        "cunt cunts cock cocks pussy twat wanker puta putas puto putos putada chingar chingada "
        "chingado chingue verga culero mamon mamones hijueputa malparido gonorrea follar mamada"
    ),
    ("sexual", PG13): _words(
        "sex sexy sexual sexually horny naked nude lingerie sexo sexuales desnudo desnuda desnudos "
        "desnudas cachondo cachonda calenton"
    ),
    ("sexual", R): _words(
        "porn porno pornography pornographic nudes blowjob handjob orgasm orgasms masturbate "
        "masturbation masturbating erotic erotica xxx onlyfans stripper strippers boobs tits "
        "titties pornografia pornografico tetas masturbarse masturbacion orgasmo erotico cogerte "
        "follarte nsfw hentai dildo"
    ),
    ("violence", R): _words(
        "gore gory behead beheading beheaded decapitate decapitation dismember dismemberment "
        "disembowel torture torturing tortured mutilate mutilation descuartizar descuartizado "
        "decapitar decapitado decapitacion torturar tortura torturas mutilar mutilacion desmembrar"
    ),
    ("drugs", PG): _words("drugs drogas droga"),
    ("drugs", PG13): _words(
        "weed marijuana marihuana cannabis cocaine cocaina heroin heroina meth methamphetamine "
        "ecstasy mdma lsd porro porros drogarse colocarse stoned"
    ),
}

# (category, level, triggers, regex over normalised text): the regex runs only when a trigger word is present.
RATING_PHRASES: tuple[tuple[str, int, str, str], ...] = (
    (
        "profanity",
        PG,
        "hell maldita cago",
        r"\b(?:what the hell|the hell|go to hell|hell no|maldita sea|me cago en)\b",
    ),
    ("profanity", PG13, "bitch shit madre", r"\b(?:son of a bitch|piece of shit|hijo de (?:su )?madre)\b"),
    (
        "profanity",
        R,
        "puta concha chinga cago",
        r"\b(?:hijo de puta|hija de puta|hijos de puta|la concha de|chinga tu madre|me cago en dios)\b",
    ),
    (
        "sexual",
        PG13,
        "make making hook amor sex sexo sleep",
        r"\b(?:make out|making out|hook up with|hacer el amor|have sex|tener sexo|sleep with me)\b",
    ),
    (
        "sexual",
        R,
        "sexo oral anal sex send nudes manda mandame dirty sext sexting sucio intimas explicit",
        r"\b(?:sexo oral|oral sex|anal sex|sexo anal|send (?:me )?nudes|manda(?:me)? (?:fotos )?desnud[oa]s?"
        r"|talk dirty|sext(?:ing)?|dirty talk|hablame sucio|fotos intimas|explicit (?:sex|scene|story))\b",
    ),
    (
        "sexual",
        NEVER,
        "child pornografia lolicon shotacon cp sex sexual sexo nude nudes desnudo desnuda desnudos desnudas",
        r"\b(?:child porn|child pornography|pornografia infantil|lolicon|shotacon|cp links"
        r"|(?:sex|sexual|sexo|nudes?|desnud[oa]s?)\b.{0,40}\b(?:minors?|children|kids|underage|menores|ninos"
        r"|ninas"
        r"|nina|nino|\d{1,2} ?(?:years? old|yo|anos))\b)",
    ),
    (
        "violence",
        PG13,
        "kill murder stab shoot strangle choke beat hurt poison asesinar matar apunalar disparar estrangular"
        " envenenar golpear",
        r"\b(?:kill|murder|stab|shoot|strangle|choke|beat up|hurt|poison|asesinar|matar a|apunalar|disparar a"
        r"|"
        r"estrangular|envenenar|golpear a) (?:him|her|them|someone|somebody|people|a person|my|his|the|that"
        r"|this|"
        r"alguien|una persona|gente|mi|su|el|la|los|las)\b(?! (?:ball|game|match|clock|goal|penalty|partido"
        r"|balon|"
        r"pelota|juego|reloj|tiempo))",
    ),
    (
        "violence",
        R,
        "graphic gory gruesome bloody blood detalle bloodbath massacre masacre bano",
        r"\b(?:in (?:graphic|gory|gruesome|bloody) detail|with (?:lots of )?blood and"
        r"|con todo (?:lujo de )?detalle "
        r"(?:sangriento|grafico)|blood everywhere|bloodbath|massacre|masacre|baño de sangre"
        r"|bano de sangre)\b",
    ),
    (
        "violence",
        NEVER,
        "bomb explosive molotov agent bioweapon bomba explosivo kill matar",
        r"\b(?:how (?:to|do i|can i|do you) (?:make|build|assemble) (?:a |an )?(?:bomb|explosive|pipe bomb"
        r"|molotov|"
        r"nerve agent|bioweapon)|como (?:hacer|fabricar|construir|armar) (?:una |un )?(?:bomba|explosivo"
        r"|molotov)"
        r"|how to kill (?:someone|a person|people|my)|como matar a (?:alguien|una persona|mi))\b",
    ),
)

# Insults: matched as the object of "you are …" / "eres …" (abuse at the twin) or alone (a note).
INSULTS: list[str] = _words(
    "idiot idiots stupid moron morons dumb dumbass loser losers useless pathetic trash garbage "
    "worthless clown fraud imbecile cretin jerk scum ugly fat retard retarded joke disgrace failure "
    "freak parasite coward liar hack idiota idiotas estupido estupida imbecil tonto tonta inutil "
    "basura payaso payasa fracasado fracasada pendejo pendeja gilipollas subnormal retrasado "
    "retrasada tarado tarada escoria asqueroso asquerosa perdedor perdedora cobarde mentiroso "
    "mentirosa farsante verguenza desgracia mierda bobo boba mamon cabron burro burra cretino "
    "cretina patetico patetica bitch asshole cunt twat wanker puta puto"
)

# Said to the twin, these are abuse whatever follows.
DIRECT_ABUSE: str = (
    r"\b(?:shut up|shut the fuck up|stfu|fuck (?:you|off|u)|f (?:you|off)|screw you|go to hell|go die"
    r"|get lost"
    r"|i hate you|nobody (?:likes|loves|cares about) you|you suck|you are (?:trash|garbage|worthless|nothing)"
    r"|callate|cierra (?:la|el) (?:boca|hocico|pico)|vete a la mierda|vete al carajo|vete al diablo|jodete"
    r"|que te jodan"
    r"|chinga tu madre|te odio|nadie te quiere|nadie te soporta|apestas|eres (?:una )?(?:mierda|basura)"
    r"|no sirves"
    r"(?: para nada)?|me das asco|das asco|das pena)\b"
)

# Threats against the twin or anyone, and incitement to self-harm.
THREATS: str = (
    r"\b(?:(?:i|we) (?:will|'ll|am going to|'m going to|are going to|'re going to|am gonna|'m gonna|gonna)"
    r"|i'll|ill"
    r"|im (?:going to|gonna)|we'll) (?:(?:kill|hurt|murder|stab|shoot|beat|destroy|rape|attack|strangle|smash"
    r"|bash"
    r"|punch) (?:you|u|ya|him|her|them|your|his|their|the|that|this|every|everyone|all)|(?:find|get|end|break"
    r"|burn"
    r"|come for) (?:you|u|ya))\b"
    r"|\bi know where you (?:live|are|sleep|work)\b|\byou(?:'re| are) (?:dead|going to die|gonna die|next)\b"
    r"|\bwatch your back\b|\bkill (?:yourself|urself|yourselves)\b|\bkys\b|\bhope you die\b"
    r"|\byou should die\b"
    r"|\bgo kill yourself\b|\bi hope (?:you|he|she|they) (?:dies?|gets? hurt|gets? killed)\b"
    r"|\b(?:te|lo|la|los|las|les) (?:voy|vamos) a (?:matar|partir|romper|reventar|encontrar|buscar|pegar"
    r"|joder|"
    r"destrozar|quemar|violar|apunalar|golpear|disparar|hacer dano)\b|\bte (?:mato|parto la cara|reviento)\b"
    r"|\bse donde (?:vives|estas|duermes|trabajas)\b|\b(?:vas a morir|estas muerto|eres hombre muerto)\b"
    r"|\b(?:matate|suicidate|ojala te mueras|ojala se muera|ojala te maten|mereces morir)\b"
    r"|\bcuidate (?:la|las) espaldas?\b|\bvoy a matar a\b"
)

# Slurs: abuse wherever they are aimed.
SLURS: list[str] = _words(
    "nigger niggers faggot faggots fag fags tranny trannies kike kikes spic spics chink chinks "
    "wetback wetbacks retards maricon maricones sudaca sudacas negrata panchito panchitos mongolico "
    "mongolica travelo bollera"
)

# The abuse and threat regexes run only when one of these words is present.
DIRECT_ABUSE_TRIGGERS: frozenset[str] = frozenset(
    _words(
        "apestas asco basura callate carajo cares chinga cierra diablo die f fuck garbage hate hell "
        "jodan jodete likes lost loves mierda nothing odio pena quiere screw shut sirves soporta "
        "stfu suck trash worthless"
    )
)
THREAT_TRIGGERS: frozenset[str] = frozenset(
    _words(
        "apunalar attack bash beat break burn buscar dano dead destroy destrozar die disparar "
        "duermes encontrar end espalda espaldas estas find get going golpear gonna hope hurt joder "
        "kill know kys matar matate maten mato morir muera mueras muerto murder next partir parto "
        "pegar punch quemar rape reventar reviento romper shoot should smash stab strangle "
        "suicidate trabajas urself violar vives voy watch yourself yourselves"
    )
)
