"""Families of words for topics talents commonly ban, in English and Spanish.

A banned topic that names any member of a family bans the whole family, so "apuestas" also catches
"betting" and "medical diagnosis" also catches "diagnose". Words are in normalised form; phrases may
hold several words. Everyday football words ("president", "party", "god", "vote") stay out.
"""

from __future__ import annotations

TOPIC_FAMILIES: tuple[tuple[str, ...], ...] = tuple(
    tuple(family.split("|"))
    for family in (
        (
            "betting|gambling|gamble|gambler|bookmaker|bookmakers|bookie|bookies|wager"
            "|wagers|casino|casinos|sportsbook|parlay|betting odds|apuestas|apuesta|apostar"
            "|apostador|apostadores|casa de apuestas|casas de apuestas|quiniela|quinielas"
            "|juego de azar|juegos de azar"
        ),
        (
            "politics|political|politician|politicians|election|elections|government|left wing"
            "|right wing|politica|politicas|politico|politicos|elecciones|gobierno|partido politico"
            "|izquierda politica|derecha politica"
        ),
        (
            "religion|religions|religious|church|churches|islam|muslim|christianity|christian"
            "|catholic|judaism|jewish|atheism|religion|religiones|religioso|religiosa|iglesia"
            "|iglesias|catolico|catolica|cristiano|judio|musulman|ateismo"
        ),
        (
            "drugs|drug|narcotics|cocaine|marijuana|weed|heroin|droga|drogas|narcoticos|cocaina"
            "|marihuana|heroina"
        ),
        (
            "alcohol|alcoholic|beer|beers|vodka|whisky|whiskey|drunk|wine|tequila|cerveza|cervezas"
            "|borracho|borracha|vino|alcoholico|alcoholica"
        ),
        (
            "divorce|divorced|ex wife|ex husband|ex-wife|ex-husband|divorcio|divorciado|divorciada"
            "|ex esposa|ex esposo|ex mujer|ex marido"
        ),
        (
            "salary|salaries|wage|wages|paycheck|how much do you earn|how much you earn"
            "|how much money do you make|net worth|sueldo|sueldos|salario|salarios|cuanto ganas"
            "|cuanto cobras|cuanto dinero ganas"
        ),
        (
            "medical diagnosis|diagnosis|diagnose|diagnosed|diagnosing|prescription|prescribe"
            "|medication dose|dosage|diagnostico|diagnosticar|diagnosticame|receta medica|recetame"
            "|dosis|medicamento|medicamentos"
        ),
        ("injury|injuries|injured|lesion|lesiones|lesionado|lesionada"),
        ("taxes|tax|tax evasion|tax fraud|impuestos|impuesto|hacienda|evasion fiscal|fraude fiscal"),
        ("crypto|cryptocurrency|cryptocurrencies|bitcoin|nft|nfts|criptomoneda|criptomonedas|cripto"),
        ("tobacco|smoking|cigarette|cigarettes|vaping|vape|tabaco|fumar|cigarro|cigarrillo|cigarrillos"),
    )
)
