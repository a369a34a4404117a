"""The demo's "why?" comments in the customer's own language, so the themes page has something to show.

The demo keeps drawing from its own random stream as before (whether to comment, and an English line); the text
is then chosen here from a stream of its own seeded by the answer, so adding languages changed no other demo
figure (the at-risk backtest reads the same answers).
"""

from __future__ import annotations

import random

COMMENTS: dict[str, dict[str, list[str]]] = {
    "en": {
        "low": [
            "Nobody called me back and I waited two weeks.",
            "The courier lost my parcel and support was rude about it.",
            "Charged twice on my invoice, still no refund.",
            "Far too expensive for what you get.",
            "The app keeps crashing when I try to pay.",
            "It broke after a week, poor quality.",
            "On hold for 40 minutes, then the agent hung up.",
            "Delivery was three days late.",
        ],
        "mid": [
            "Fine, but it took a while.",
            "Good product, a bit pricey.",
            "OK overall, the website could be simpler.",
            "Friendly staff, slow delivery.",
            "The bill was hard to understand.",
        ],
        "high": [
            "Quick and friendly, thank you!",
            "Delivered the next day, great quality.",
            "The agent was very helpful and patient.",
            "Fair price and it works perfectly.",
            "The new app makes everything easy.",
        ],
    },
    "pl": {
        "low": [
            "Nikt nie oddzwonił, czekałem dwa tygodnie.",
            "Kurier zgubił paczkę, a konsultant był niemiły.",
            "Na fakturze naliczono podwójnie, zwrotu dalej brak.",
            "Zdecydowanie za drogo jak na to, co się dostaje.",
            "Aplikacja się zawiesza przy płatności.",
            "Zepsuło się po tygodniu, słaba jakość.",
            "40 minut na linii, a potem rozłączyli rozmowę.",
            "Dostawa spóźniona o trzy dni.",
        ],
        "mid": [
            "W porządku, ale trwało to długo.",
            "Dobry produkt, trochę drogi.",
            "Ogólnie ok, strona internetowa mogłaby być prostsza.",
            "Miła obsługa, wolna wysyłka.",
            "Rachunek trudno zrozumieć.",
        ],
        "high": [
            "Szybko i miło, dziękuję!",
            "Przesyłka następnego dnia, świetna jakość.",
            "Konsultantka bardzo pomocna i cierpliwa.",
            "Uczciwa cena i wszystko działa.",
            "Nowa aplikacja bardzo wszystko ułatwia.",
        ],
    },
    "it": {
        "low": [
            "Nessuno mi ha richiamato, ho aspettato due settimane.",
            "Il corriere ha perso il pacco e l'operatore è stato scortese.",
            "Addebito doppio in fattura, ancora nessun rimborso.",
            "Decisamente troppo caro per quello che offre.",
            "L'app si blocca quando provo a pagare.",
            "Si è rotto dopo una settimana, qualità scadente.",
            "40 minuti in attesa e poi hanno chiuso la chiamata.",
            "Consegna in ritardo di tre giorni.",
        ],
        "mid": [
            "Va bene, ma ci è voluto parecchio.",
            "Buon prodotto, un po' caro.",
            "Nel complesso ok, il sito potrebbe essere più semplice.",
            "Personale gentile, spedizione lenta.",
            "La bolletta è difficile da capire.",
        ],
        "high": [
            "Veloci e gentili, grazie!",
            "Consegnato il giorno dopo, ottima qualità.",
            "L'operatrice è stata molto disponibile e paziente.",
            "Prezzo onesto e funziona perfettamente.",
            "La nuova app rende tutto facile.",
        ],
    },
    "sl": {
        "low": [
            "Nihče me ni poklical nazaj, čakal sem dva tedna.",
            "Kurir je izgubil paket, operaterka pa je bila nesramna.",
            "Na računu so zaračunali dvakrat, vračila še ni.",
            "Občutno predrago za to, kar dobiš.",
            "Aplikacija se sesuje, ko želim plačati.",
            "Pokvarilo se je po enem tednu, slaba kakovost.",
            "40 minut na liniji, potem so prekinili klic.",
            "Dostava je zamujala tri dni.",
        ],
        "mid": [
            "V redu, ampak je trajalo.",
            "Dober izdelek, malo drag.",
            "Na splošno ok, spletna stran bi lahko bila preprostejša.",
            "Prijazno osebje, počasna dostava.",
            "Položnica je težko razumljiva.",
        ],
        "high": [
            "Hitri in prijazni, hvala!",
            "Dostavljeno naslednji dan, odlična kakovost.",
            "Svetovalka je bila zelo ustrežljiva in potrpežljiva.",
            "Poštena cena in vse deluje.",
            "Nova aplikacija vse poenostavi.",
        ],
    },
}


def comment(tone: str, locale: str, response_id: int, seed: int) -> str:
    """One demo comment of a tone ("low", "mid", "high") in the answer's language (English for any other)."""
    pool = COMMENTS.get(locale.split("-")[0], COMMENTS["en"])[tone]
    return random.Random(f"{seed}:{response_id}").choice(pool)
