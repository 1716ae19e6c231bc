"""Generate the bundled Harbor Crest Bank example datasets (all PII is fake, produced by faker).

    python -m privtune.examples.make_bank_tickets [OUT_DIR]     # default: this package's folder

Writes bank_tickets.jsonl (8-way ticket triage, chat format) and bank_replies.jsonl (draft an agent
reply, alpaca format). Output is byte-for-byte deterministic for a given faker version: one seeded
`random.Random` drives every choice and each faker locale is seeded on its own; nothing reads the clock.

Tickets are composed from hand-written parts: a channel frame (email, chat, phone transcript, web form),
openers, a core problem phrasing (≥ 18 per category, many indirect), an optional distractor that
borrows another category's vocabulary, identifier sentences, closers and a register (formal, angry,
terse, rambling, typos, lowercase). The distractors are there so that a model has to read the ticket
rather than match one keyword.
"""

from __future__ import annotations

import json
import os
import random
import re
import string
import sys
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import faker
from faker import Faker
from faker.providers.address.it_IT import Provider as ItalianAddress

from privtune.examples import CATEGORIES

SEED = 20250611
# faker's data tables may change between releases; the shipped files were made with this version.
GENERATED_WITH_FAKER = "40.54.0"
N_PER_CATEGORY = 60
N_REPLIES = 200
MIN_WORDS, MAX_WORDS = 15, 60

SYSTEM = "You are Harbor Crest Bank's support triage assistant."
INSTRUCTION = (
    "Classify the ticket as one of: " + ", ".join(CATEGORIES) + ". "
    "Answer with the category name only."
)
REPLY_INSTRUCTION = "Draft a reply to this customer ticket as a Harbor Crest Bank agent."
BANK_PHONE = {"$": "1-800-555-0147", "£": "0800 555 0147", "€": "+353 1 555 0147"}

# locale, weight, currency symbol, country name (for "I live in ..." style mentions)
LOCALES = [
    ("en_US", 40, "$"), ("en_GB", 18, "£"), ("en_CA", 6, "$"), ("en_IE", 6, "€"), ("de_DE", 8, "€"),
    ("fr_FR", 7, "€"), ("es_ES", 5, "€"), ("it_IT", 5, "€"), ("nl_NL", 5, "€"),
]

# ------------------------------------------------------------------------------------------ core problems
# `[a|b]` picks one alternative; `{slot}` is filled from the persona. Many phrasings avoid the obvious keyword.
CORE: dict[str, list[str]] = {
    "card_lost": [
        "I lost my {card} {when} and I need it blocked before anyone [uses|can use] it.",
        "I can't find my {card} anywhere. I've checked the car, my coat pockets, the whole house.",
        "I left my wallet in a [taxi|cab|rideshare] {when} and the {card} was in it.",
        "My bag was [taken|stolen|nicked] at {place} {when} with my {card} inside.",
        "I think I dropped my {card} somewhere between the station and the office.",
        "my purse got snatched on the [bus|tram|train] {when}, please freeze my card",
        "Please cancel my {card}, it has gone missing and I don't want it used.",
        "I need a replacement {card}, the old one is nowhere to be found.",
        "Someone pickpocketed me at {place} {when}; the wallet with my {card} is gone.",
        "Could you put a stop on my {card}? I've [misplaced|mislaid] it.",
        "Our [flat|house|apartment] was broken into {when} and my cards were taken along with the laptop.",
        "My backpack went missing at the airport and my {card} was in the front pocket. I need a new one sent.",
        "No idea where my {card} is. The last time I had it was at {merchant} {when}.",
        "Reporting a missing card. Please block it and issue a new one.",
        "My [son|daughter] borrowed my {card} to get groceries and now [he|she] can't find it.",
        "[Lost|Lost my] wallet. Need the {card} frozen asap.",
        "I think I left my {card} at the restaurant last night and they say nobody handed it in.",
        "Haven't seen my {card} since the weekend, pretty sure it fell out of my pocket at {place}.",
        "The cash machine at {place} kept my {card} and the branch was closed, so I no longer have it.",
        "I gave my jacket to the dry cleaner with my {card} in it and it never came back.",
        "My phone case with my {card} tucked in the back is gone, I must have left it on the [train|bench|plane].",
        "Went for a swim {when} and my locker was emptied. Wallet, keys and {card} all gone.",
    ],
    "card_declined": [
        "My {card} was [declined|refused] at {merchant} {when} even though there is plenty of money in the account.",
        "I tried to pay for groceries and the terminal said transaction not approved.",
        "The card keeps getting [refused|rejected] online, I've tried three different websites.",
        "I'm travelling in {country} and none of the shops will accept my {card}.",
        "The payment at {merchant} bounced twice, it was so embarrassing at the checkout.",
        "contactless has stopped working on my card, the reader just beeps and says see cashier",
        "The cash machine won't give me money, it says unable to process, but my balance is fine.",
        "Why can't I pay for my flight with my {card}? It gets rejected at the very last step.",
        "The card says do not honour when I try to pay my gym membership.",
        "My card isn't working anywhere since {when}. It hasn't expired and I have it right here.",
        "The online shop says the issuer refused authorisation for a {amount} order.",
        "The card machine asks for my PIN and then fails every [time|single time].",
        "The pump at the petrol station rejected my {card} {when} and I had to leave the car there.",
        "The hotel tried to take the deposit of {amount} and says my bank turned it down.",
        "Every purchase over {amount} is being blocked for some reason.",
        "My streaming subscription says payment method invalid, the same card worked last month.",
        "My new {card} arrived, I activated it, and still every payment fails.",
        "I couldn't pay for dinner {when}, the waiter tried the card three times and nothing.",
        "My rent payment by card at the letting agent was not accepted although the money is there.",
        "At the [pharmacy|supermarket|vet] {when} my card was [refused|not accepted] and I had to pay cash.",
        "Apple Pay and the physical card both [fail|get refused] at the till since {when}.",
    ],
    "transfer_failed": [
        "I sent {amount} to {payee} {when} and it still hasn't arrived.",
        "The wire to my landlord came back to me and I have no idea why.",
        "A payment of {amount} to {payee} has been showing as pending for [three|four|five] days.",
        "The money left my account but the person I paid says they never got it.",
        "I tried to move money from [checking|my current account] to savings and the app just gave me an error.",
        "The international payment to {country} was returned to my account minus a charge.",
        "My standing order for the rent didn't go out this month.",
        "The payment I made to {payee} was rejected by the other bank, reference {ref}.",
        "I keep getting could not be completed when paying my [daughter|son|nephew].",
        "the [faster payment|bank transfer] to my builder never showed up on his side",
        "I paid an invoice of {amount} to {payee} and the money bounced back two days later.",
        "The app says sent but the receiving bank says nothing was received.",
        "The payment I scheduled for {date} simply didn't happen.",
        "I'm trying to send money to my mother's account and it fails at the confirmation step every time.",
        "The funds I moved to my brokerage account are stuck somewhere in between.",
        "Reference {ref}: the beneficiary bank says the account details don't match, but I double-checked them.",
        "Our payroll run didn't reach the staff accounts {when}, {amount} is sitting in limbo.",
        "I moved {amount} to my own account at another bank and it never landed.",
        "{payee} is still waiting for the {amount} I [sent|paid] {when}; your app shows it as processing.",
        "The deposit for the car went out {when} but the dealer says the money came back to you.",
    ],
    "account_locked": [
        "I can't log into online banking, it says my profile is locked.",
        "I typed my password wrong a few times and now I'm shut out completely.",
        "The app keeps saying access suspended, please contact us.",
        "The verification code never arrives so I can't sign in.",
        "My online access has been frozen and I need to pay bills today.",
        "I reset my password as instructed but it still won't let me in.",
        "I got a new phone and the security app no longer works, so I can't get into my account.",
        "Every time I try to log on it says too many attempts.",
        "My user ID was disabled without any warning.",
        "The security questions are not accepted even though I'm sure the answers are right.",
        "I'm stuck on the login screen, it loops back after the one-time passcode.",
        "It says my profile is restricted pending verification and I can't do anything online.",
        "I haven't used internet banking for a while and now it says my credentials have expired.",
        "The sign-in code goes to my old number which I don't have anymore.",
        "I can see my balance at the cash machine but the website won't let me sign in at all.",
        "[Face ID|The fingerprint login] failed and now the app wants a code I can't get.",
        "Since the app update I can't get past the login page.",
        "After I logged in from abroad my access was blocked.",
        "The website says my credentials are invalid, I haven't changed anything.",
        "I forgot my memorable word and after three tries the app told me to call you.",
        "My token device broke and without it I can't get into the business portal.",
    ],
    "fraud_report": [
        "There are charges on my statement I didn't make: {amount} at {merchant}.",
        "Someone has been using my card details online, and I still have the card with me.",
        "Someone called pretending to be from your bank and I read them a code. Now money is missing.",
        "A transfer of {amount} to an account I don't know went out {when}. I did not send it.",
        "I clicked a link in a text about a parcel and typed in my card details. Now there are payments I didn't authorise.",
        "There's a direct debit from a company I have never heard of.",
        "My elderly [father's|mother's] account shows cash withdrawals [he|she] did not make.",
        "I got an alert for a purchase in {country}, I've never been there.",
        "I think my online banking has been hacked, the email on the profile was changed and not by me.",
        "There are lots of small payments of {small} that I don't recognise.",
        "I got a letter about a loan I never applied for. Someone is using my identity.",
        "Cash was withdrawn at a machine in {city} while I was at work.",
        "I was scammed: a seller on a marketplace took {amount} and disappeared.",
        "A monthly charge keeps appearing from a site I never signed up to.",
        "I got an email that looked like yours asking me to confirm my details. I did, and now {amount} is gone from savings.",
        "Somebody changed the postal address on my account without my permission.",
        "My card must have been [copied|cloned|skimmed], there are purchases at {merchant} I never made.",
        "Unauthorised transactions on my account {when}, please investigate.",
        "Someone added a new payee to my account and sent {amount} to them. It wasn't me.",
        "A man on the phone said my money was at risk and talked me into moving {amount} to a safe account.",
    ],
    "fee_dispute": [
        "I was charged a {small} overdraft fee but I was never overdrawn.",
        "Why is there a monthly maintenance charge? My account was supposed to be free.",
        "There's a foreign transaction charge on a card purchase I made at home.",
        "I got a late payment charge on my credit card even though I paid on time.",
        "You charged me {small} for a wire transfer that was advertised as free.",
        "There's a {small} account service charge on my statement, what is this for?",
        "Please refund the returned payment charge, the payment bounced because of your system.",
        "My statement shows interest on a balance that I paid off in full.",
        "The ATM withdrawal charge was taken twice for one withdrawal.",
        "I was told the replacement card was free but I have been billed for it.",
        "The annual fee on my card went up without any notice.",
        "Why am I paying {small} a month for paper statements? I switched to e-statements.",
        "I was hit with a penalty for closing my savings early and nobody told me about it.",
        "Please reverse the insufficient funds charge, my salary came in the same day.",
        "The exchange rate markup on my payment is far more than what you advertise.",
        "There is a {small} deduction labelled admin on my account and I want it back.",
        "I've been a customer for years and you still charge me for a low balance.",
        "I was charged for depositing a cheque, that has never happened before.",
        "I was billed {small} for a statement copy I never asked for.",
        "You took {small} from my account for an unpaid item, but the item was paid the next morning.",
    ],
    "address_change": [
        "I've moved and need to update my address to {address}.",
        "Please update my mailing address, the new one is {address}.",
        "We relocated last month. Could you change where the statements are sent? It's now {address}.",
        "My post is still going to my old [flat|place]. New address: {address}.",
        "We move house on {date}; from then on please use {address}.",
        "I need to change my home address on all my accounts, I now live at {address}.",
        "Please send all post, card renewals included, to {address} from now on.",
        "My previous address was {old_address}, please replace it with {address}.",
        "I just got married and moved in with my [husband|wife|partner], please update my details to {address}.",
        "My correspondence address should be {address} from now on.",
        "I'm living abroad now, in {country}, and my contact details on file need updating.",
        "The address on my profile has a typo in the house number, it should be {address}.",
        "Please note my change of residence: {address}.",
        "Where can I update my postcode? The app won't let me edit it. The correct one is {postcode}.",
        "We sold the house, so letters should now go to {address}.",
        "Moved for university, please record my term-time address as {address}.",
        "Our business has moved offices. The new registered address is {address}.",
        "I no longer live at {old_address}, please stop sending letters there.",
        "New tenants at my old place keep getting my statements. I'm at {address} now.",
    ],
    "loan_question": [
        "What interest rate could I get on a personal loan of {big}?",
        "Could you tell me if I'm eligible to borrow money for a car?",
        "We're looking to buy a house and want to understand our mortgage options.",
        "How much would monthly repayments be on {big} over [three|five|seven] years?",
        "I want to pay off my loan early, is there a penalty for that?",
        "Is it possible to top up my existing loan to cover a kitchen renovation?",
        "What documents do I need to apply for financing?",
        "I applied for a loan two weeks ago and haven't heard anything back.",
        "Can I pause my loan repayments for a month? I've just lost my job.",
        "My business needs a line of credit, who can I talk to?",
        "Could you send me my remaining loan balance and the payoff amount?",
        "Do you offer student loans or only personal ones?",
        "I'd like to consolidate my credit card debts into one loan.",
        "What is the APR on home improvement [loans|lending] at the moment?",
        "Could I borrow {big} for a wedding, and how fast would the money arrive?",
        "My loan instalment date clashes with my payday, can it be moved?",
        "Is my credit score good enough to get a mortgage with you?",
        "We'd like to refinance our mortgage with Harbor Crest, what would you need from us?",
        "How long does approval take if I apply for {big} to buy a used van?",
        "Our fixed rate ends on {date}. What would you offer us to stay?",
    ],
}

# A secondary remark in another category's vocabulary; the label stays the ticket's main problem.
DISTRACTORS: dict[str, list[str]] = {
    "card_lost": [
        "No strange transactions so far as far as I can see.",
        "I also have a transfer going out on Friday, will it still go through?",
        "I don't want to pay a fee for the replacement.",
        "I'd rather not get locked out of the app while this is sorted.",
        "Please send the new card to the address you have, I haven't moved.",
        "My loan repayment comes out of that account, I hope that still works.",
    ],
    "card_declined": [
        "The card is not lost, it's right here in my hand.",
        "It's not fraud, these are my own purchases.",
        "I can log into the app fine and the balance looks right.",
        "I don't want another overdraft fee because of this.",
        "I changed my address last month, in case that matters.",
        "Transfers from the app work, it's only the card.",
    ],
    "transfer_failed": [
        "I'm sure it's not a scam, I've checked the details twice.",
        "My card works fine, this is only about the payment.",
        "I'd also like to know if there's a fee for sending it again.",
        "I can log in, so it's not an access problem.",
        "Nothing has changed with my address or phone number.",
        "I need this sorted before my loan payment is due.",
    ],
    "account_locked": [
        "Nobody else has my details, so I don't think it's fraud.",
        "I need to check whether my transfer went through.",
        "My loan payment is due tomorrow and I can't see it.",
        "My card still works in shops though.",
        "I want to avoid a late fee on my bills.",
        "I also wanted to update my address once I'm back in.",
    ],
    "fraud_report": [
        "I still have my card, it's not lost.",
        "This is not a failed transfer, someone is stealing from me.",
        "I can still log in, nothing looks locked.",
        "I don't want to pay any fees for sorting this out either.",
        "My address and phone number are the same as before.",
        "I was actually trying to check my loan balance when I noticed.",
    ],
    "fee_dispute": [
        "The card itself works fine, it's about the charge.",
        "I'm not reporting fraud, I just think the charge is wrong.",
        "This isn't about a failed transfer or anything, just the charge.",
        "I could log in and see it on the statement.",
        "I have had the same address for years and never got a letter about it.",
        "I'm also thinking about a loan with you, but not if this is how I'm treated.",
    ],
    "address_change": [
        "My card is fine, I just want future letters to go to the right place.",
        "I'm not locked out, the app just doesn't have the option.",
        "Nothing else has changed, the transfers can stay as they are.",
        "Please make sure I'm not charged a fee for this.",
        "This affects my loan statements too.",
        "I'm not reporting anything suspicious, it's just an update.",
    ],
    "loan_question": [
        "My card has been declined before because of my limit, so I want to get this right.",
        "I can't see the loan section in the app even though I can log in.",
        "I'd want the repayments taken by transfer from my current account.",
        "Are there any arrangement fees I should know about?",
        "I moved recently, if that makes any difference.",
        "My card and account are fine, this is only about borrowing.",
    ],
}

SUBJECTS: dict[str, list[str]] = {
    "card_lost": ["Missing card", "Card gone", "Please block my card"],
    "card_declined": ["Card not working", "Payment problem", "Card refused"],
    "transfer_failed": ["Payment not received", "Transfer problem", "Missing payment"],
    "account_locked": ["Cannot log in", "Online banking", "Access problem"],
    "fraud_report": ["Unknown payments", "Suspicious activity", "Scam"],
    "fee_dispute": ["Charge on my statement", "Refund request", "Complaint about charges"],
    "address_change": ["Change of details", "Moved house", "Update my details"],
    "loan_question": ["Borrowing question", "Loan question", "Mortgage enquiry"],
}
GENERIC_SUBJECTS = ["Urgent", "Help please", "Account query", "Question", "Complaint", "Please call me",
                    "Re: my account", "Support request", "(no subject)"]

# ------------------------------------------------------------------------------------------ shared parts
GREETINGS = {
    "email": ["Hello,", "Dear Harbor Crest team,", "Hi there,", "Good morning,", "To whom it may concern,",
              "Dear Sir or Madam,", "Hi,"],
    "chat": ["hi,", "hello?", "Hi,", "hey -", "", ""],
}
INTROS = [
    "My name is {full}.", "This is {full}.", "{full} here.", "I am {full}, a customer of yours.",
    "My {rel} {rel_full} and I share this account.",
    "My name is {full} and I have an account with you.",
]
CONTEXT = [
    "I've banked with you for {years} years.", "I tried calling but the wait was over an hour.",
    "Sorry if this is the wrong place to ask.", "I used the chat bot first but it didn't help.",
    "I already went to the branch and they told me to write here.", "Hope you can help.",
]
RAMBLE = [
    "It has been a long week, honestly.", "I was on my way to pick up the kids when I noticed.",
    "My {rel} {rel_first} says I should have called straight away, but I was at work.",
    "I'm not very good with these things, so bear with me.", "This has never happened to me before.",
]
ANGRY = ["This is ridiculous.", "Absolutely unacceptable!!", "I am furious.", "Sort this out NOW.",
         "Third time I'm writing about this!", "Very disappointed with your service."]
FORMAL_ASKS = ["I would be grateful if you could look into this.", "I would appreciate your prompt assistance.",
               "Kindly advise on the next steps."]
ASKS = ["Can someone call me back?", "Please advise.", "What should I do?", "Please help.",
        "Let me know what you need from me.", "Can you look into it today?"]
CLOSERS = {"email": ["Thanks,", "Regards,", "Kind regards,", "Best,", "Thank you,", "Cheers,"],
           "formal": ["Yours faithfully,", "Kind regards,", "Yours sincerely,"]}

# Identifier sentences; `who` marks the ones that need a given locale family.
IDS = {
    "account": ["My account number is {acct}.", "acct no. {acct}", "Account: {acct}.", "account {acct}",
                "The account is {acct}."],
    "sortcode": ["Sort code {sort}, account {acct}."],
    "iban": ["My IBAN is {iban}.", "IBAN {iban}"],
    "card": ["The card number is {cardnum}.", "It's the card ending in {last4}.", "card ending {last4}",
             "Card no. {cardnum}"],
    "phone": ["You can reach me on {phone}.", "Best number to call is {phone}.", "Call me at {phone}.",
              "my number is {phone}"],
    "email": ["My email is {email}.", "Please reply to {email}.", "email: {email}"],
    "dob": ["DOB {dob} for verification.", "Date of birth: {dob}.", "My date of birth is {dob}."],
}
CARD_CATEGORIES = {"card_lost", "card_declined", "fraud_report", "fee_dispute"}

CARDS = ["debit card", "credit card", "Visa card", "Mastercard", "card", "bank card", "debit card", "card"]
WHENS = ["yesterday", "this morning", "last night", "on Saturday", "on Monday", "two days ago", "earlier today",
         "at the weekend", "on the 14th", "last Friday", "an hour ago"]
PLACES = ["the gym", "the train station", "a concert", "the airport", "the shopping centre", "the market",
          "the football match", "the hospital car park", "the library"]
MERCHANTS = ["Greenleaf Grocers", "QuickFuel", "the pharmacy", "an online electronics shop", "Bluewave Air",
             "Metro Cinema", "Corner Bakery", "HomeStyle Furniture", "Pixel Games", "the hardware store"]
COUNTRIES = ["Portugal", "Japan", "Mexico", "Canada", "Thailand", "Spain", "Italy", "Turkey", "Morocco", "Brazil"]
RELATIONS = ["wife", "husband", "mother", "father", "son", "daughter", "partner", "sister"]
MALE_RELATIONS = {"husband", "father", "son"}
EMAIL_DOMAINS = ["example.com", "example.net", "example.org", "mail.example.com"]
CHANNELS = ["email", "chat", "phone_transcript", "web_form"]
CHANNEL_WEIGHTS = [30, 30, 20, 20]
HIGH_PRIORITY = {"card_lost": 0.6, "fraud_report": 0.75, "account_locked": 0.4, "card_declined": 0.3,
                 "transfer_failed": 0.35, "fee_dispute": 0.1, "address_change": 0.05, "loan_question": 0.05}
LOW_PRIORITY = {"card_lost": 0.0, "fraud_report": 0.0, "account_locked": 0.05, "card_declined": 0.1,
                "transfer_failed": 0.05, "fee_dispute": 0.35, "address_change": 0.6, "loan_question": 0.6}
ALTERNATION = re.compile(r"\[([^\[\]]*\|[^\[\]]*)\]")
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]


# ------------------------------------------------------------------------------------------ persona + PII
@dataclass(frozen=True)
class Persona:
    locale: str
    currency: str
    first: str
    last: str
    email: str
    phone: str
    acct: str
    sort: str
    iban: str
    cardnum: str
    dob: str
    address: str
    old_address: str
    postcode: str
    city: str
    rel: str
    rel_first: str
    rel_last: str
    payee: str


def _fakers(seed: int) -> dict[str, Faker]:
    out = {}
    for i, (loc, _, _) in enumerate(LOCALES):
        fk = Faker(loc)
        fk.seed_instance(seed + i)
        out[loc] = fk
    return out


def _email(rng: random.Random, first: str, last: str) -> str:
    def clean(s: str) -> str:
        ascii_only = unicodedata.normalize("NFKD", s).encode("ascii", "ignore").decode()
        return "".join(c for c in ascii_only.lower() if c in string.ascii_lowercase)
    f, la = clean(first) or "user", clean(last) or "mail"
    local = rng.choice([f"{f}.{la}", f"{f[0]}{la}", f"{f}{la}{rng.randint(1, 99)}", f"{la}.{f[0]}",
                        f"{f}_{la}", f"{f}{rng.randint(1960, 2005)}"])
    return f"{local}@{rng.choice(EMAIL_DOMAINS)}"


def _account_number(rng: random.Random) -> str:
    digits = "".join(str(rng.randint(0, 9)) for _ in range(rng.choice([8, 9, 10])))
    style = rng.random()
    if style < 0.5:
        return digits
    if style < 0.75 and len(digits) >= 9:
        return f"{digits[:4]}-{digits[4:7]}-{digits[7:]}"
    if style < 0.9:
        return f"HCB-{digits[:8]}"
    return " ".join(digits[i:i + 4] for i in range(0, len(digits), 4))


def _dob(rng: random.Random, locale: str) -> str:
    """Written the way people in that locale write dates (no clock involved, so output is stable)."""
    y, m, d = rng.randint(1941, 2004), rng.randint(1, 12), rng.randint(1, 28)
    local = {"en_US": f"{m:02d}/{d:02d}/{y}", "en_CA": f"{y}-{m:02d}-{d:02d}", "de_DE": f"{d:02d}.{m:02d}.{y}",
             "nl_NL": f"{d:02d}-{m:02d}-{y}"}.get(locale, f"{d:02d}/{m:02d}/{y}")
    return rng.choice([local, local, f"{d} {MONTHS[m - 1]} {y}", f"{MONTHS[m - 1]} {d}, {y}"])


# faker's it_IT city list is built from a set, so its order (and city()) changes with PYTHONHASHSEED.
IT_CITIES = sorted(ItalianAddress.cities)


def _city(fk: Faker) -> str:
    return fk.random_element(IT_CITIES) if fk.locales[0] == "it_IT" else fk.city()


def _address(fk: Faker) -> str:
    street = ", ".join(part.strip() for part in fk.street_address().splitlines())
    if fk.locales[0] in ("de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL"):
        return f"{street}, {fk.postcode()} {_city(fk)}"
    return f"{street}, {_city(fk)} {fk.postcode()}"


def _relative_first_name(fk: Faker, relation: str) -> str:
    if relation in MALE_RELATIONS:
        return fk.first_name_male()
    if relation == "partner":
        return fk.first_name()
    return fk.first_name_female()


def make_persona(rng: random.Random, fakers: dict[str, Faker]) -> Persona:
    loc, _, cur = rng.choices(LOCALES, weights=[w for _, w, _ in LOCALES])[0]
    fk = fakers[loc]
    first, last = fk.first_name(), fk.last_name()
    address = _address(fk)
    rel = rng.choice(RELATIONS)
    phone = fk.phone_number()
    if rng.random() < 0.15:  # customers abroad or with a foreign mobile
        phone = fakers[rng.choice([lc for lc, _, _ in LOCALES])].phone_number()
    return Persona(
        locale=loc, currency=cur, first=first, last=last, email=_email(rng, first, last), phone=phone,
        acct=_account_number(rng), sort=f"{rng.randint(10, 99)}-{rng.randint(10, 99)}-{rng.randint(10, 99)}",
        iban=fk.iban(), cardnum=fk.credit_card_number(), dob=_dob(rng, loc), address=address,
        old_address=_address(fk), postcode=address.rsplit(" ", 1)[-1] if cur == "$" else fk.postcode(),
        city=_city(fk), rel=rel, rel_first=_relative_first_name(fk, rel), rel_last=last,
        payee=rng.choice([f"{fk.first_name()} {fk.last_name()}", fk.company()]),
    )


def _money(rng: random.Random, cur: str, lo: int, hi: int) -> str:
    value = rng.randint(lo, hi) + (rng.choice([0, 0, rng.randint(1, 99)]) / 100)
    text = f"{value:,.2f}" if value % 1 else f"{int(value):,}"
    if cur == "€" and rng.random() < 0.5:
        return f"{text} EUR" if rng.random() < 0.5 else f"€{text}"
    return f"{cur}{text}"


def slots(rng: random.Random, p: Persona) -> dict[str, str]:
    """Every value a template may ask for; unused ones cost nothing."""
    return {
        "full": f"{p.first} {p.last}", "first": p.first, "last": p.last, "email": p.email, "phone": p.phone,
        "acct": p.acct, "sort": p.sort, "iban": p.iban, "cardnum": p.cardnum, "last4": p.cardnum[-4:],
        "dob": p.dob, "address": p.address, "old_address": p.old_address, "postcode": p.postcode,
        "city": p.city, "rel": p.rel, "rel_first": p.rel_first, "rel_full": f"{p.rel_first} {p.rel_last}",
        "payee": p.payee, "card": rng.choice(CARDS), "when": rng.choice(WHENS), "place": rng.choice(PLACES),
        "merchant": rng.choice(MERCHANTS), "country": rng.choice(COUNTRIES), "years": str(rng.randint(2, 30)),
        "amount": _money(rng, p.currency, 120, 4800), "small": _money(rng, p.currency, 3, 45),
        "big": f"{p.currency}{rng.randrange(2_000, 60_000, 500):,}",
        "ref": f"{rng.choice(['TRX', 'PAY', 'REF', 'WT'])}{rng.randint(100000, 9999999)}",
        "date": rng.choice([f"{rng.randint(1, 28)} {rng.choice(MONTHS)}", f"{rng.choice(MONTHS)} {rng.randint(1, 28)}"]),
    }


def expand(rng: random.Random, template: str) -> str:
    """Resolve every `[a|b|c]` to one alternative."""
    return ALTERNATION.sub(lambda m: rng.choice(m.group(1).split("|")), template)


def used_slots(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


# ------------------------------------------------------------------------------------------ register
def _typo(rng: random.Random, template: str) -> str:
    """Swap, drop or double one letter in one plain word (never inside a {slot})."""
    words = template.split(" ")
    idx = [i for i, w in enumerate(words) if w.isalpha() and len(w) > 3]
    if not idx:
        return template
    i = rng.choice(idx)
    w, j = words[i], rng.randrange(1, len(words[i]) - 1)
    kind = rng.random()
    if kind < 0.4:
        w = w[:j] + w[j + 1] + w[j] + w[j + 2:]
    elif kind < 0.7:
        w = w[:j] + w[j + 1:]
    else:
        w = w[:j] + w[j] + w[j:]
    words[i] = w
    return " ".join(words)


@dataclass
class Ticket:
    category: str
    channel: str
    priority: str
    text: str
    facts: dict[str, str]  # slot values mentioned in the text, plus the writer's name (replies use them)
    mentioned: frozenset[str]  # slot names that occur in the text
    currency: str


def _id_sentences(rng: random.Random, category: str, p: Persona, channel: str, want: int,
                  exclude: set[str]) -> list[str]:
    kinds = ["account", "phone", "email", "dob"]
    if category in CARD_CATEGORIES:
        kinds.append("card")
    if p.currency == "£":
        kinds.append("sortcode")
    if p.currency == "€" or (p.currency == "£" and category == "transfer_failed"):
        kinds.append("iban")
    if channel == "web_form":
        exclude = exclude | {"email"}  # the form has its own email field
    kinds = [k for k in kinds if k not in exclude]
    chosen = rng.sample(sorted(set(kinds)), k=min(want, len(set(kinds))))
    if "sortcode" in chosen and "account" in chosen:  # the sort code sentence already names the account
        chosen.remove("account")
    return [rng.choice(IDS[kind]) for kind in chosen]


def compose_ticket(rng: random.Random, p: Persona, category: str, channel: str, need_name: bool = False) -> Ticket:
    """One ticket: a list of template sentences, styled by a register, then filled with the persona's PII."""
    register = rng.choices(["neutral", "formal", "angry", "terse", "rambling"], weights=[40, 15, 15, 15, 15])[0]
    core = expand(rng, rng.choice(CORE[category]))
    body: list[str] = []
    if register != "terse" and rng.random() < 0.25:
        body.append(rng.choice(INTROS))
    if register in ("neutral", "formal") and rng.random() < 0.15:
        body.append(rng.choice(CONTEXT))
    if register == "rambling":
        body += rng.sample(RAMBLE + CONTEXT, k=rng.choice([1, 1, 2]))
    body.append(core)
    if rng.random() < 0.5:
        body.append(rng.choice(DISTRACTORS[category]))
    if register == "angry":
        body.insert(rng.randint(len(body) - 1, len(body)), rng.choice(ANGRY))
    want = rng.choices([0, 1, 2], weights=[14, 60, 26])[0]
    form_phone = channel == "web_form" and rng.random() < 0.3
    body += _id_sentences(rng, category, p, channel, want, exclude={"phone"} if form_phone else set())
    if register == "formal" and rng.random() < 0.6:
        body.append(rng.choice(FORMAL_ASKS))
    elif register not in ("terse", "formal") and rng.random() < 0.2:
        body.append(rng.choice(ASKS))

    if channel != "phone_transcript" and rng.random() < 0.2:  # speech-to-text makes other mistakes
        i = rng.randrange(len(body))
        body[i] = _typo(rng, body[i])
    lower = rng.random() < {"chat": 0.5, "email": 0.08}.get(channel, 0.0)
    if lower:
        body = [s.lower().rstrip(".") for s in body]
    has_name = any("{full}" in s for s in body)  # the writer's own name (a relative's doesn't count)

    sign = ""
    if channel == "email":
        greet = rng.choice(GREETINGS["email"]) if register != "terse" and rng.random() < 0.75 else ""
        closer = rng.choice(CLOSERS["formal" if register == "formal" else "email"])
        if (not has_name and rng.random() < 0.85) or rng.random() < 0.4:
            sign = f"\n\n{closer}\n{{{rng.choice(['full', 'full', 'first'])}}}"
        elif rng.random() < 0.5:
            sign = f"\n\n{closer.rstrip(',')}"
        text = (greet + "\n\n" if greet else "") + " ".join(body) + sign
    elif channel == "chat":
        greet = rng.choice(GREETINGS["chat"])
        if need_name and not has_name:
            body.insert(0, rng.choice(["this is {full}", "{full} here", "my name is {full}"]))
        text = (greet + " " if greet else "") + " ".join(body)
    elif channel == "phone_transcript":
        turns = ["Customer: " + " ".join(body)]
        if not has_name and (need_name or rng.random() < 0.45):
            turns.append(rng.choice(["Agent: Can I take your full name and date of birth?\nCustomer: {full}, {dob}.",
                                     "Agent: Could you confirm your name and account number?\nCustomer: {full}, "
                                     "it's {acct}.",
                                     "Agent: Who am I speaking with?\nCustomer: {full}."]))
        elif has_name and rng.random() < 0.3:
            turns.append(rng.choice(["Agent: And your date of birth?\nCustomer: {dob}.",
                                     "Agent: Can I have the account number?\nCustomer: Yes, {acct}."]))
        text = "\n".join(turns)
    else:  # web_form
        subject = rng.choice(SUBJECTS[category] if rng.random() < 0.4 else GENERIC_SUBJECTS)
        head = ["Name: {full}", "Email: {email}"] + (["Phone: {phone}"] if form_phone else [])
        text = "\n".join(head + [f"Subject: {subject}", "Message: " + " ".join(body)])
    if need_name and not any(t in text for t in ("{full}", "{first}")):
        text += "\n{full}" if channel == "email" else " - {full}"

    values = slots(rng, p)
    facts = {k: values[k] for k in used_slots(text)}
    rendered = text.format(**values)
    priority = _priority(rng, category)
    if register == "angry" and priority != "high":  # angry customers get bumped one level
        priority = "normal" if priority == "low" else "high"
    names = {"first": p.first} | ({"last": p.last} if "full" in facts else {})
    return Ticket(category, channel, priority, rendered, facts | names, frozenset(facts), p.currency)


def _priority(rng: random.Random, category: str) -> str:
    r = rng.random()
    if r < HIGH_PRIORITY[category]:
        return "high"
    if r < HIGH_PRIORITY[category] + LOW_PRIORITY[category]:
        return "low"
    return "normal"


def word_count(text: str) -> int:
    return len(text.split())


def generate_tickets(rng: random.Random, fakers: dict[str, Faker], n_per_category: int, seen: set[str],
                     need_name: bool = False, categories: list[str] | None = None) -> list[Ticket]:
    """Tickets in length range, never repeating a text already in `seen` (which is updated)."""
    out = []
    for category in categories or CATEGORIES:
        made = 0
        while made < n_per_category:
            channel = rng.choices(CHANNELS, weights=CHANNEL_WEIGHTS)[0]
            t = compose_ticket(rng, make_persona(rng, fakers), category, channel, need_name=need_name)
            if not MIN_WORDS <= word_count(t.text) <= MAX_WORDS or t.text in seen:
                continue
            seen.add(t.text)
            out.append(t)
            made += 1
    return out


def ticket_record(i: int, t: Ticket) -> dict:
    return {
        "id": f"T{i:04d}",
        "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"{INSTRUCTION}\n\nTicket: {t.text}"},
            {"role": "assistant", "content": t.category},
        ],
        "metadata": {"category": t.category, "channel": t.channel, "priority": t.priority},
    }


# ------------------------------------------------------------------------------------------ replies
# Each reply: greeting, one acknowledgement (may name facts from the ticket), one next step, optional extra.
REPLY_ACK: dict[str, list[str]] = {
    "card_lost": ["I'm sorry to hear your card has gone missing.",
                  "Thank you for letting us know so quickly that your card ending {last4} is missing.",
                  "I understand your card was lost and that you are worried about it being used."],
    "card_declined": ["I'm sorry your card was declined, I know how frustrating that is at the till.",
                      "Thank you for reporting that your card ending {last4} is being refused.",
                      "I can see why the declined payment at {merchant} was upsetting."],
    "transfer_failed": ["I'm sorry that your payment has not reached {payee} yet.",
                        "Thank you for the details about the payment that did not arrive.",
                        "I understand the transfer of {amount} has not gone through as expected.",
                        "I have looked up the payment with reference {ref}."],
    "account_locked": ["I'm sorry you are unable to sign in to online banking.",
                       "Thank you for letting us know that your online access is blocked.",
                       "I understand how inconvenient it is to be locked out of your account."],
    "fraud_report": ["Thank you for reporting this to us so promptly.",
                     "I'm very sorry to hear that someone may have misused your account.",
                     "I understand you did not make the {amount} payment at {merchant}.",
                     "Thank you for telling us straight away about the suspicious activity on your account."],
    "fee_dispute": ["Thank you for querying the charge on your statement.",
                    "I'm sorry for the confusion about the {small} charge.",
                    "I understand you were not expecting this fee on your account."],
    "address_change": ["Thank you for letting us know about your move.",
                       "I have received your request to update your address to {address}.",
                       "Thank you for asking us to update your contact details."],
    "loan_question": ["Thank you for getting in touch about borrowing with Harbor Crest Bank.",
                     "Thank you for your question about borrowing {big}.",
                     "I'm happy to help with your lending question."],
}
REPLY_STEP: dict[str, list[str]] = {
    "card_lost": ["I have blocked the card so nobody can use it, and a replacement will reach you within 5 to 7 "
                  "working days.",
                  "The card is now cancelled and a new one is on its way to the address we hold for you.",
                  "I've frozen the card; please confirm in the app that you'd like a replacement and we'll post it "
                  "today."],
    "card_declined": ["Our fraud filter paused the card as a precaution, and I have now removed that block.",
                      "Please try the payment again in an hour; if it is refused again, reply here with the time "
                      "and shop name.",
                      "I've raised this with our card team, who will check the authorisation logs within one "
                      "working day."],
    "transfer_failed": ["I've asked our payments team to trace it with the receiving bank, which usually takes "
                        "2 to 3 working days.",
                        "Please check the payee details in the app; if they are correct, reply here and we will "
                        "resend the payment free of charge.",
                        "I've opened an investigation and we will credit back any amount that cannot be traced."],
    "account_locked": ["I have reset your access, and you will receive a one-time code by text to set a new "
                       "password.",
                       "For your security, please call us from the phone number on your account so we can verify "
                       "you and unlock it.",
                       "Your profile is now unlocked; please sign in with your user ID and choose a new password."],
    "fraud_report": ["I have blocked your card and online payments, and our fraud team will contact you within "
                     "24 hours.",
                     "We've opened a fraud case and a specialist will call you to go through each transaction.",
                     "Please don't share any codes with anyone; we have secured your account and started an "
                     "investigation."],
    "fee_dispute": ["I've reviewed your account and refunded the charge, which will show within 2 working days.",
                    "I've passed this to our complaints team, who will reply in writing within 5 working days.",
                    "The fee was applied under your account's tariff, but as a goodwill gesture I have refunded it "
                    "this time."],
    "address_change": ["Your new address is now on file and all future letters will go there.",
                       "To finish the change, please upload a proof of address in the app under Profile.",
                       "I've updated your details, and you'll get a confirmation letter at the new address."],
    "loan_question": ["A lending specialist will call you within two working days to talk through rates and "
                     "eligibility.",
                     "You'll find current rates, repayment options and early repayment terms in the app under "
                     "Borrow, and a specialist can go through them with you.",
                     "I've sent you our lending guide with rates, fees and the documents we would need."],
}
REPLY_EXTRA = [
    "We'll also confirm this by email to {email}.",
    "If you have any questions, call us on {bank_phone}.",
    "You can reply to this message at any time if anything changes.",
    "We'll update you by email at {email} as soon as we know more.",
]
REPLY_GREETING = ["Dear {first},", "Hi {first},", "Hello {first} {last},", "Dear {first} {last},"]
REPLY_SIGN = ["Best regards, Harbor Crest Support", "Kind regards, Harbor Crest Bank", "Harbor Crest Support Team"]


def _pick_fitting(rng: random.Random, options: list[str], facts: dict[str, str]) -> str:
    """A template whose slots are all facts the customer actually mentioned (no invented details)."""
    fitting = [o for o in options if used_slots(o) <= set(facts)]
    return rng.choice(fitting)


def compose_reply(rng: random.Random, t: Ticket) -> str:
    facts = t.facts | {"bank_phone": BANK_PHONE[t.currency]}
    parts = [_pick_fitting(rng, REPLY_ACK[t.category], facts), _pick_fitting(rng, REPLY_STEP[t.category], facts)]
    if rng.random() < 0.6:
        parts.append(_pick_fitting(rng, REPLY_EXTRA, facts))
    text = _pick_fitting(rng, REPLY_GREETING, facts) + "\n\n" + " ".join(parts)
    if rng.random() < 0.5:
        text += "\n\n" + rng.choice(REPLY_SIGN)
    return text.format(**facts)


# ------------------------------------------------------------------------------------------ files
def build(seed: int = SEED) -> tuple[list[dict], list[dict]]:
    rng = random.Random(seed)
    fakers = _fakers(seed)
    seen: set[str] = set()
    tickets = generate_tickets(rng, fakers, N_PER_CATEGORY, seen)
    rng.shuffle(tickets)
    ticket_rows = [ticket_record(i + 1, t) for i, t in enumerate(tickets)]

    # fresh tickets (never one of the above), each naming its writer so the reply can greet them
    reply_tickets = generate_tickets(rng, fakers, N_REPLIES // len(CATEGORIES), seen, need_name=True)
    rng.shuffle(reply_tickets)
    reply_rows = [{"id": f"R{i + 1:04d}", "instruction": REPLY_INSTRUCTION, "input": t.text,
                   "output": compose_reply(rng, t), "metadata": {"category": t.category}}
                  for i, t in enumerate(reply_tickets)]
    return ticket_rows, reply_rows


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    """Atomic write with ordinary 0644 permissions: these are shipped package data, not private artefacts."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_examples(out_dir: str | os.PathLike, seed: int = SEED) -> dict[str, Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tickets, replies = build(seed)
    paths = {"bank_tickets": out / "bank_tickets.jsonl", "bank_replies": out / "bank_replies.jsonl"}
    _write_jsonl(paths["bank_tickets"], tickets)
    _write_jsonl(paths["bank_replies"], replies)
    return paths


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    out = Path(args[0]) if args else Path(__file__).resolve().parent
    if faker.VERSION != GENERATED_WITH_FAKER:
        print(f"note: faker {faker.VERSION} != {GENERATED_WITH_FAKER}; output may differ from the shipped files",
              file=sys.stderr)
    for name, path in write_examples(out).items():
        print(f"wrote {name}: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
