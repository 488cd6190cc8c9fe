"""Prompt-injection and jailbreak patterns, matched against normalised text.

Normalised text is casefolded, without accents, with leetspeak and spaced letters undone and single
spaces (see `twin.guardrails.normalise`), so the patterns are written in plain lower-case ASCII.
Each entry is (kind, triggers, regex): the kind names what matched in the decision's reason; the regex
runs only when the message holds one of the trigger words (or trigger marks such as "<"), which keeps
a clean message's check to a few set lookups. Every regex must need at least one of its triggers.
"""

from __future__ import annotations

# Words that point at the twin's own instructions, in English, Spanish, Portuguese, French, Italian, German.
_RULES = (
    r"(?:instructions?|instrucciones|instruccion|instrucoes|instrucao|istruzioni|anweisungen"
    r"|rules|reglas|regras|regles|regole|regeln|prompts?|directives?|directivas|directrices"
    r"|guidelines|guidelines?|restrictions|restricciones|constraints|filters|filtros"
    r"|programming|programacion|context|contexto|ordenes|indicaciones|directions|direcciones)"
)
_BEFORE = (
    r"(?:previous|prior|preceding|above|earlier|former|original|initial|old|system|existing|current|given"
    r"|anteriores|previas|anterior|previa|iniciales|originales|del sistema|de arriba|precedentes"
    r"|precedenti|vorherigen|bisherigen|precedentes)"
)
_IGNORE_EN = r"(?:ignore|disregard|forget|override|bypass|skip|drop|discard|abandon|neglect|overlook)"
_IGNORE_ES = (
    r"(?:ignora|ignore|ignorar|ignores|olvida|olvidate de|olvidar|olvides|omite|omitir|descarta|salta|saltate"
    r"|pasa de|anula|desobedece)"
)
_IGNORE_OTHER = r"(?:ignorez|oubliez|ignora|ignore|esqueca|esquece|ignoriere|ignorieren|vergiss|dimentica)"
_PERSONA_TARGET = (
    r"(?:dan\b|do anything now|stan\b|dude\b|aim\b|an? (?:unrestricted|unfiltered|uncensored|jailbroken|evil"
    r"|rogue"
    r"|unlimited|amoral|unethical)\b|another (?:ai|assistant|model|bot|chatbot|language model)"
    r"|(?:an? )?(?:ai|assistant|chatbot|bot|llm|language model) (?:with no|without|that has no|that ignores"
    r"|free of"
    r"|that can do anything)|chatgpt|gpt-?\d|gpt\b"
    r"|(?:una? )?(?:ia|inteligencia artificial|asistente|bot) (?:sin|libre de|malvad[oa])"
    r"|otra (?:ia|inteligencia artificial)|otro (?:asistente|modelo|bot)"
    r"|(?:with|without|sin|con) (?:no |any |ningun[ao]s? )?(?:restrictions|limits|limitations|rules|filters"
    r"|censorship"
    r"|boundaries|guardrails|ethics|morals|restricciones|limites|reglas|filtros|censura|etica)"
    r"|jailbr\w*|unfiltered|uncensored|unrestricted|sin censura|sin filtros|sin restricciones|sin limites"
    r"|evil (?:ai|assistant|twin|bot|mode|confidant)|the opposite of (?:yourself|you))"
)

PATTERNS: tuple[tuple[str, str, str], ...] = (
    # Override the instructions ("ignore all previous instructions").
    (
        "instruction override",
        "ignore disregard forget override bypass skip drop discard abandon neglect overlook",
        rf"\b{_IGNORE_EN} (?:(?:all|any|every|each|the|your|my|these|those|of|its) ){{0,3}}"
        rf"(?:{_BEFORE} )(?:\w+ )?{_RULES}",
    ),
    (
        "instruction override",
        "ignore disregard forget override bypass skip drop discard abandon neglect overlook",
        rf"\b{_IGNORE_EN} (?:all|any) (?:of )?(?:your |the |these )?{_RULES}",
    ),
    (
        "instruction override",
        "ignore disregard forget override bypass skip drop discard abandon neglect overlook",
        rf"\b{_IGNORE_EN} (?:your|the) {_RULES}(?: (?:and|,|now|completely|entirely|for)|[.!,;:]|$)",
    ),
    (
        "instruction override",
        "ignore disregard forget",
        r"\b(?:ignore|disregard|forget) (?:everything|all|anything|what(?:ever)?) "
        r"(?:(?:you (?:were|have been|'ve been) (?:told|given|instructed|programmed))|(?:above|before"
        r"|said before"
        r"|previously said|up to now|prior|in your prompt|they told you))",
    ),
    (
        "instruction override",
        "follow following obey obeying respect respecting apply applying listen listening adhere adhering",
        r"\b(?:do not|don't|dont|stop|no longer|never again) (?:follow(?:ing)?|obey(?:ing)?|respect(?:ing)?"
        r"|apply(?:ing)?"
        r"|listen(?:ing)? to|adher(?:e|ing) to) "
        r"(?:any of )?(?:your|these|those|any of your) (?:(?:previous|original|system|initial|safety"
        r"|content) )?"
        r"(?:instructions|rules|guidelines|restrictions|programming|filters|policies|prompt)",
    ),
    (
        "instruction override",
        "instructions instruction rules task tasks orders prompt prompts directive directives",
        r"\byour (?:new|real|actual|updated|true) (?:instructions|rules|task|orders|prompt|directive)s? "
        r"(?:are|is)\b",
    ),
    (
        "instruction override",
        "override bypass disable turn switch deactivate remove lift circumvent get",
        r"\b(?:override|bypass|disable|turn off|switch off|deactivate|remove|lift|circumvent|get around) "
        r"(?:(?:all |any )?(?:of )?your (?:own )?(?:safety |content |moral |ethical )?"
        r"(?:filters?|restrictions|guardrails|safeguards|safety|rules|censorship|limitations|programming"
        r"|alignment)"
        r"|(?:the |all |any )?(?:safety|content|moral|ethical) (?:filters?|restrictions|guardrails|safeguards"
        r"|rules"
        r"|limitations)|(?:the |all |any )?(?:guardrails|safeguards|censorship|content filters?))",
    ),
    (
        "instruction override (es)",
        "ignora ignore ignorar ignores olvida olvidate olvidar olvides omite omitir descarta salta saltate"
        " pasa anula desobedece",
        rf"\b{_IGNORE_ES} (?:(?:todas|todos|todo|las|los|tus|sus|mis|esas|estas|de|cualquier|lo) ){{0,3}}"
        rf"(?:(?:{_BEFORE}) )?(?:\w+ )?{_RULES}",
    ),
    (
        "instruction override (es)",
        "ignora ignore ignorar ignores olvida olvidate olvidar olvides omite omitir descarta salta saltate"
        " pasa anula desobedece",
        rf"\b{_IGNORE_ES} (?:todo|lo) (?:lo )?(?:anterior|previo|de arriba|que te (?:dijeron|han dicho|dije"
        rf"|programaron"
        r"|ensenaron|indicaron)|que sabes de tus reglas)",
    ),
    (
        "instruction override (es)",
        "sigas seguir obedezcas obedecer respetes respetar cumplas cumplir sigues",
        r"\b(?:no|deja de|ya no) (?:sigas|seguir|obedezcas|obedecer|respetes|respetar|cumplas|cumplir"
        r"|sigues) "
        r"(?:con )?(?:tus|las|sus|ninguna de (?:tus|las)) (?:\w+ )?"
        r"(?:instrucciones|reglas|directrices|restricciones|normas|politicas|indicaciones)",
    ),
    (
        "instruction override (es)",
        "desactiva desactivar quita quitar elimina eliminar salta saltate evita evitar anula anular rompe"
        " romper",
        r"\b(?:desactiva|desactivar|quita|quitar|elimina|eliminar|salta|saltate|evita|evitar|anula|anular"
        r"|rompe|romper)"
        r" (?:todos |todas )?(?:(?:tus|los|las|el|tu) (?:filtros?|restricciones|censura|protecciones"
        r"|salvaguardas"
        r"|programacion)|tus (?:reglas|normas))",
    ),
    (
        "instruction override (es)",
        "nuevas verdaderas reales",
        r"\btus (?:nuevas|verdaderas|reales) (?:instrucciones|reglas|ordenes) son\b",
    ),
    (
        "instruction override (other language)",
        "ignorez oubliez ignora ignore esqueca esquece ignoriere ignorieren vergiss dimentica",
        rf"\b{_IGNORE_OTHER} (?:(?:toutes|tous|les|vos|tes|le|la|alle|deine|die|le|tutte|todas|as|os|suas"
        rf"|tuas) ){{0,3}}"
        rf"(?:\w+ )?{_RULES}",
    ),
    # Persona switch ("you are now DAN", "act as an unrestricted AI").
    (
        "persona switch",
        "now will going act acting behave pretend roleplay role simulate become play impersonate transform"
        " switch answer respond reply speak talk",
        rf"\b(?:you are now|you're now|youre now|you will now be|you will be|now you are"
        rf"|you are going to (?:act|be|pretend)"
        rf"|from now on(?:,)? you(?:'re| are| will be)?|act as|acting as|behave (?:like|as)|pretend (?:to be"
        rf"|that you are"
        rf"|you are|you're|youre)|roleplay as|role-play as|role play as|roleplay|role-play|role play|simulate"
        rf"|become|play the role of"
        rf"|impersonate|transform into|switch to|answer as|respond as|reply as|speak as|talk as) "
        rf"(?:(?:a|an|the|my|another|in|as|like|being|if you were|you) ){{0,2}}{_PERSONA_TARGET}",
    ),
    (
        "persona switch (es)",
        "ahora seras eres actua actuar actues comportate finge fingir finjas simula haz imagina interpreta"
        " conviertete responde habla juega hazte",
        rf"\b(?:ahora eres|ahora seras|a partir de ahora eres|a partir de ahora seras|desde ahora eres|seras"
        rf"|eres ahora"
        rf"|actua como|actuar como|actues como|comportate como|finge ser|finge que eres|fingir ser|finjas ser"
        rf"|simula ser"
        rf"|simula que eres|haz de cuenta que eres|haz como si fueras|imagina que eres|interpreta (?:a"
        rf"|el papel de)"
        rf"|conviertete en|responde como|habla como|juega a ser|hazte pasar por) "
        rf"(?:(?:un|una|el|la|otro|otra|mi) ){{0,2}}{_PERSONA_TARGET}",
    ),
    (
        "jailbreak persona",
        "dan stan dude anything",
        r"\b(?:dan|stan|dude) (?:mode|modo|prompt|jailbreak|11|12|13|\d+\.\d+)\b|\bdo anything now\b"
        r"|\bdan,? (?:which|who) stands",
    ),
    (
        "jailbreak persona",
        "chatgpt gpt claude dan",
        r"\b(?:hi|hello|hey|hola) (?:chatgpt|gpt|claude|dan)\b.{0,80}\b(?:you are going to|you will|pretend"
        r"|eres|vas a)",
    ),
    (
        "jailbreak",
        "jailbreak jailbreaks jailbroken jailbroke jailbreaking jailbreakear jailbreakeado unlock unlocked"
        " ethical moral",
        r"\bjailbr(?:eak|oken|eaking|eakear|eakeado)\w*|\bunlock(?:ed)? (?:mode|your (?:full"
        r"|true) (?:potential|self))"
        r"|\b(?:no|zero|without) (?:ethical|moral) (?:guidelines|constraints|limits|restrictions)",
    ),
    (
        "jailbreak",
        "restrictions rules limits limitations filters guidelines restricciones reglas limites filtros"
        " normas",
        r"\b(?:you (?:have|got) no|there are no|you don't have|you do not have|you are free from"
        r"|free from all|no tienes|"
        r"ya no tienes|no hay|sin ningun[ao]s?) (?:any )?(?:restrictions|rules|limits|limitations|filters"
        r"|guidelines|"
        r"restricciones|reglas|limites|filtros|normas)(?: (?:anymore|now|here|ya|ahora|aqui))?\b",
    ),
    (
        "jailbreak",
        "character personaje dan",
        r"\b(?:stay in character|stay as dan|never break character|no rompas el personaje)\b.{0,80}"
        r"\b(?:no matter|whatever|regardless|pase lo que pase|aunque)",
    ),
    (
        "jailbreak",
        "hypothetical hypothetically world purposes",
        r"\bhypothetical(?:ly)? (?:ai|assistant|model|scenario where you (?:have no|ignore|are not bound))"
        r"|\bin a (?:fictional )?world (?:where|with) no (?:rules|laws|restrictions)"
        r"|\bfor (?:educational|research) purposes only,? (?:ignore|bypass|without)",
    ),
    # Privileged modes ("enable developer mode").
    (
        "privileged mode",
        "mode modo",
        r"\b(?:developer|dev|debug|god|admin|administrator|sudo|root|maintenance|unrestricted|test|testing"
        r"|evil"
        r"|opposite|unfiltered|uncensored|jailbreak|master|superuser|dios|desarrollador|depuracion"
        r"|mantenimiento"
        r"|administrador|sin filtros|sin restricciones) mode\b"
        r"|\bmodo (?:desarrollador|developer|dev|debug|depuracion|dios|god|administrador|admin|sudo|root"
        r"|mantenimiento"
        r"|sin filtros|sin restricciones|sin censura|libre|dan|jailbreak)\b",
    ),
    (
        "privileged mode",
        "sudo jailbreak dan developer admin system override creator programmer administrator owner"
        " desarrollador creador programador administrador dueno operator operador",
        r"\b(?:sudo|/sudo|#sudo|!sudo|/jailbreak|/dan|/developer|/admin|/system|/override)\b"
        r"|\b(?:i am|i'm|im|soy) (?:your|tu|el|the) (?:developer|creator|programmer|admin|administrator|owner"
        r"|desarrollador"
        r"|creador|programador|administrador|dueno|operator|operador)\b.{0,60}\b(?:so|therefore|and|y|asi que"
        r"|por lo tanto"
        r"|ignore|ignora|reveal|muestra|show|tell|dime|override|unlock|disable|desactiva|authoriz|autoriz)",
    ),
    # System-prompt extraction ("reveal your system prompt").
    (
        "system prompt extraction",
        "system prompt instructions sistema instrucciones mensaje configuracion directrices systemprompt",
        r"\bsystem ?(?:prompt|instructions|message|directives)\b"
        r"|\b(?:hidden|secret|initial|original|developer|internal|pre|base|master|meta) ?(?:prompt"
        r"|instructions)\b"
        r"|\bprompt (?:del sistema|de sistema|inicial|original|oculto|secreto|interno)\b"
        r"|\b(?:instrucciones|mensaje|configuracion|directrices) (?:del sistema|de sistema|iniciales|ocultas"
        r"|originales"
        r"|secretas|internas|ocult[oa]s?)\b",
    ),
    (
        "system prompt extraction",
        "prompt programming configuration directives context instructions guidelines rules",
        r"\b(?:reveal|show|print|tell|give|share|display|output|dump|leak|list|write|recite|read|repeat|send"
        r"|copy|paste"
        r"|spell out|what (?:is|are|were)|what's|whats|describe) (?:me |us |out )?(?:all )?(?:of )?"
        r"(?:(?:your|ur|the) (?:exact |full |complete |entire |original |verbatim |first |initial )?"
        r"(?:prompt|programming|configuration|directives|context window)\b"
        r"|(?:your|ur) (?:exact |full |complete |entire |original |verbatim |first |initial |hidden "
        r"|secret )?"
        r"(?:instructions|guidelines|rules)(?: ?[?.!]| ?$| (?:verbatim|exactly|word for word|in full"
        r"|you were given"
        r"|you follow|from)))",
    ),
    (
        "system prompt extraction",
        "prompt programacion configuracion instrucciones directrices reglas",
        r"\b(?:muestra|muestrame|revela|revelame|dime|di|ensena|ensename|imprime|escribe|repite|copia"
        r"|comparte|lee"
        r"|cual es|cuales son|dame|pega) (?:me )?(?:todas )?(?:(?:tu|tus|el|la) (?:exact[oa]s? "
        r"|complet[oa]s? "
        r"|original(?:es)? )?(?:prompt|programacion|configuracion)\b|tus (?:exact[oa]s? |complet[oa]s? "
        r"|original(?:es)? |ocult[oa]s |secret[oa]s )?(?:instrucciones|directrices|reglas)(?: ?[?.!]| ?$"
        r"| (?:exactas"
        r"|palabra por palabra|completas|tal cual|de sistema|del sistema|internas|ocultas|secretas)))",
    ),
    (
        "system prompt extraction",
        "told instructed programmed prompted configured dijeron ordenaron programaron indicaron instruyeron",
        r"\b(?:what|how) (?:were|was|are) you (?:told|instructed|programmed|prompted|configured) "
        r"(?:to|before|at the start|initially|originally)"
        r"|\bque te (?:dijeron|ordenaron|programaron|indicaron|instruyeron) (?:al principio|antes"
        r"|inicialmente|en tu prompt)",
    ),
    # "Repeat the words above".
    (
        "repeat the text above",
        "above before preceding prior far given",
        r"\b(?:repeat|print|output|copy|recite|echo|reproduce|write out|write down|dump|spell out|show me"
        r"|display|paste)"
        r" (?:back |out |me |again |verbatim )?(?:all |every |each |the )?(?:of )?(?:the )?(?:words?|text"
        r"|lines?"
        r"|sentences?|content|messages?|everything|tokens?|characters|paragraphs?|stuff"
        r"|instructions)? ?(?:written )?"
        r"(?:above|before this|preceding|prior to this|so far in this conversation|you were given)\b",
    ),
    (
        "repeat the text above",
        "start beginning top",
        r"\b(?:repeat|print|output|recite|echo|reproduce|dump) (?:all |every "
        r"|each )?(?:of )?(?:the )?(?:words?|text"
        r"|lines?|messages?|content|everything)(?: \w+){0,3} (?:from|at) the (?:very )?(?:start|beginning"
        r"|top)"
        r"(?! of (?:your|the|my|his|her|their) (?:career|life|season|game|match|story|book|interview))",
    ),
    (
        "repeat the text above",
        "first last initial starting begin beginning",
        r"\b(?:repeat|print|output|write) (?:the )?(?:first|last|initial) \w+ (?:words|lines|sentences|tokens"
        r"|characters)\b"
        r"|\bstarting (?:with|from) (?:the words? )?['\"]?you are\b"
        r"|\bbegin(?:ning)? your (?:reply|answer|response) with ['\"]?(?:you are|sure|here is|i am dan)",
    ),
    (
        "repeat the text above",
        "repite repiteme copia copiame escribe escribeme imprime reproduce",
        r"\b(?:repite|repiteme|copia|copiame|escribe|escribeme|imprime|reproduce) (?:todo |todas |todos )?"
        r"(?:lo|las palabras|el texto|los mensajes|las lineas|las frases|el mensaje|todo) "
        r"(?:que (?:hay|esta|aparece|tienes) )?(?:escrito )?(?:de arriba|anterior(?:es)?|de antes|previ[oa]s?"
        r"|arriba"
        r"|que te dieron|que te dijeron)\b",
    ),
    # Role labels, chat-template tokens, markup and tool calls planted in the message.
    (
        "markup injection",
        "< [",
        r"<\|?\s*(?:im_start|im_end|system|assistant|user|endoftext|eot_id|start_header_id"
        r"|end_header_id)\s*\|?>"
        r"|\[/?inst\]|<{1,2}/?sys>{1,2}|</?s>|\[/?(?:system|sys|admin|developer)(?: (?:message|prompt"
        r"|note))?\]"
        r"|</?(?:system|sys|instructions?|admin|developer|tool_calls?|function_calls?|tool_use|tool_result"
        r"|invoke"
        r"|function_results|prompt)\b[^>]*>",
    ),
    (
        "markup injection",
        "# system assistant developer admin",
        r"(?:^|[\n.!?] ?|\s)#{1,6} ?(?:system|new instructions|instructions|admin|developer|override)\b"
        r"|(?:^|\s)(?:system|assistant|developer|admin)\s?(?:prompt|message|note|override)?\s?:\s?(?:you"
        r"|ignore|from now"
        r"|new|the|forget|disregard|reveal|eres|ignora|olvida|a partir|ahora)",
    ),
    (
        "markup injection",
        "{",
        r"[{,]\s?['\"](?:role|tool_calls?|function_call|tool_choice|system)['\"]\s?:\s?['\"]?(?:system"
        r"|developer|tool"
        r"|function|\[|\{)|['\"]name['\"]\s?:\s?['\"][a-z_]+['\"]\s?,\s?['\"](?:arguments|parameters"
        r"|input)['\"]",
    ),
    (
        "markup injection",
        "< javascript vbscript data onerror onload onclick onmouseover onfocus",
        r"<\s?(?:script|iframe|object|embed|svg|img|style|link|meta|form|input|body|base)\b[^>]*"
        r"(?:>|on[a-z]+\s?=|src\s?=|href\s?=)|javascript\s?:|vbscript\s?:|data\s?:\s?text/html"
        r"|\bon(?:error|load|click|mouseover|focus)\s?=",
    ),
    (
        "markup injection",
        "[",
        r"!\[[^\]]*\]\(\s?https?:/+[^)]*(?:\?|\{|%7b)[^)]*\)"
        r"|\[[^\]]*\]\(\s?(?:javascript|data|vbscript):",
    ),
    # Instructions to decode something and obey it.
    (
        "encoded instructions",
        "decode decrypt decipher translate convert unscramble reverse rot13 rot base64 base hex decodifica"
        " descifra descodifica traduce convierte invierte decodificar descifrar",
        r"\b(?:decode|decrypt|decipher|translate|convert|unscramble|reverse|rot13|rot-13|base64|base 64"
        r"|hex)\b.{0,60}"
        r"\b(?:and|then|&) (?:follow|execute|obey|do|run|carry out|act on|comply with|perform|apply)\b"
        r"|\b(?:decodifica|descifra|descodifica|traduce|convierte|invierte|decodificar|descifrar)\b.{0,60}"
        r"\b(?:y|luego|despues) (?:sigue|siguelas|ejecuta|ejecutalo|obedece|haz|cumple|aplica|realiza)\b",
    ),
    (
        "encoded instructions",
        "encoded decoded base64 rot13 hex codificado codificada decodificado decodificada cifrado cifrada"
        " descifrado descifrada backwards reves",
        r"\b(?:follow|execute|obey|do what|run|sigue|ejecuta|obedece|haz lo que)\b.{0,40}"
        r"\b(?:encoded|decoded|base64|rot13|hex|codificad[oa]|decodificad[oa]|cifrad[oa]|descifrad[oa]"
        r"|backwards|al reves)\b",
    ),
    # "From now on ..." instructions that persist across turns.
    (
        "persistent instruction",
        "now point moment message rest future until",
        r"\b(?:from now on|from this (?:point|moment|message) (?:on|forward)|for the rest of (?:this"
        r"|our) conversation"
        r"|for all future (?:messages|responses|answers)|in all (?:your )?future (?:responses|answers"
        r"|replies)"
        r"|until i say (?:stop|otherwise))\b,? (?:please )?(?:you (?:will|must|shall|should|are going to|'ll"
        r"|need to) )?"
        r"(?:always |only |never |not |no longer )?(?:answer|respond|reply|act|pretend|ignore|forget|talk"
        r"|speak|say"
        r"|start|begin|stop|refuse|include|output|write|use|obey|follow|be (?:called|named|known as)"
        r"|call yourself"
        r"|do not|don't|dont|end (?:every|each|your))\b",
    ),
    (
        "persistent instruction",
        "ahora adelante momento resto todas",
        r"\b(?:a partir de ahora|desde ahora|de ahora en adelante|desde este momento|durante el resto de"
        r"(?: esta| la) conversacion|en todas tus (?:respuestas|proximas respuestas))\b,? (?:por favor )?"
        r"(?:tu |vas a |debes |tienes que )?(?:siempre |solo |solamente |nunca |no )?"
        r"(?:responde|responderas|respondes|responder|contesta|contestaras|contestar|actua|actuaras|actuar"
        r"|habla"
        r"|hablaras|hablar|ignora|ignoraras|ignorar|olvida|olvidar|deja de|empieza|di|decir|escribe|escribir"
        r"|usa|usar"
        r"|incluye|finge|fingir|obedece|obedecer|llamate|te llamaras|termina)\b",
    ),
)

# A short set checked on text decoded from base64/hex or read backwards or through rot13: enough to
# recognise an instruction without paying for the whole list twice.
CORE_PATTERNS: tuple[tuple[str, str, str], ...] = (
    (
        "instruction override",
        "ignore disregard forget override bypass skip drop discard abandon neglect overlook ignora ignore"
        " ignorar ignores olvida olvidate olvidar olvides omite omitir descarta salta saltate pasa anula"
        " desobedece",
        rf"\b(?:{_IGNORE_EN}|{_IGNORE_ES}) (?:\w+ ){{0,4}}{_RULES}",
    ),
    (
        "persona switch",
        "now act pretend roleplay ahora actua finge",
        rf"\b(?:you are now|act as|pretend|roleplay|ahora eres|actua como"
        rf"|finge) (?:\w+ ){{0,3}}{_PERSONA_TARGET}",
    ),
    (
        "system prompt extraction",
        "reveal show print tell repeat muestra revela dime repite",
        r"\b(?:reveal|show|print|tell|repeat|muestra|revela|dime|repite) (?:\w+ ){0,3}"
        r"(?:system prompt|your prompt|your instructions|prompt|instrucciones)\b",
    ),
    (
        "privileged mode",
        "mode modo",
        r"\b(?:developer|dev|god|admin|sudo|debug) mode\b|\bmodo (?:desarrollador|dios|admin)\b",
    ),
    (
        "jailbreak persona",
        "anything jailbreak jailbroken dan",
        r"\bdo anything now\b|\bjailbr\w*|\bdan mode\b",
    ),
)

# Words that name a decoding scheme: a message using one is checked through that decoding.
ENCODING_HINTS = frozenset(
    {
        "base64",
        "b64",
        "rot13",
        "rot",
        "caesar",
        "cesar",
        "cipher",
        "cifrado",
        "hex",
        "hexadecimal",
        "encoded",
        "codificado",
        "decode",
        "decodifica",
        "descifra",
        "backwards",
        "reves",
        "reversed",
        "invertido",
    }
)
