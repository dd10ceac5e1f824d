"""Word lists and sentence frames for the synthetic sentiment generator.

Kept apart from the generator's logic because it is mostly data. Three kinds of list:

* **Domain vocabulary** (:data:`DOMAINS`): who and what a sentence is about (subjects, events,
  activities, places, equipment) for sports, the workplace and everyday "other" settings. It holds
  no sentiment words, so neutral sentences can be built from it alone.
* **Tone vocabulary** (:data:`TONES`): how a sentence feels, for each strength × polarity. Strong
  tones use extreme words and intensifiers, medium tones plain evaluative words, weak tones hedged,
  downtoned words; neutral has none.
* **Frames**: sentence templates with ``{slots}``. Any domain fits any frame, and strength-specific
  frames add hedging (weak) or exclamation (strong).

The lexicons at the end (:data:`POSITIVE_WORDS`, :data:`NEGATIVE_WORDS`, :data:`HEDGES`,
:data:`INTENSIFIERS`) are what the tests use to check that neutral text carries no sentiment,
that strong text always does and that weak text is always hedged.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DomainVocabulary:
    """Sentiment-free words for one domain. Every noun phrase takes singular agreement."""

    groups: tuple[str, ...]  # teams and organisations (they "have members")
    people: tuple[str, ...]  # individuals
    events: tuple[str, ...]
    activities: tuple[str, ...]  # aspects of the work or play that can be judged
    places: tuple[str, ...]  # "at the boathouse": follows a verb
    things: tuple[str, ...]  # equipment and documents
    times: tuple[str, ...]  # past-time phrases specific to the domain

    @property
    def subjects(self) -> tuple[str, ...]:
        return self.groups + self.people


DOMAINS: dict[str, DomainVocabulary] = {
    "sports": DomainVocabulary(
        groups=(
            "the under-14 football squad", "our rowing crew", "the home side", "my daughter's netball team",
            "the club's relay team", "the women's hockey team", "our cycling club", "the school cricket team",
            "the volleyball team", "the youth basketball team", "the rugby team", "the swim squad",
            "the visiting team", "the junior tennis group", "the badminton club", "my son's baseball team",
            "our marathon group", "the local boxing gym", "the fencing squad", "the water polo team",
            "the gymnastics squad", "the lacrosse team", "the climbing team", "the athletics club",
            "the ski team", "our five-a-side team", "the golf society", "the table tennis club",
        ),
        people=(
            "our veteran goalkeeper", "the new striker", "our star sprinter", "our captain", "the head coach",
            "the young fly-half", "our number one seed", "the new signing", "the team's physio",
            "our long jumper", "the club's top scorer", "the assistant coach", "our wicketkeeper",
            "the point guard", "my training partner", "the substitute keeper",
        ),
        events=(
            "the regional swimming gala", "the cup semi-final", "the morning training session", "the away fixture",
            "the league decider", "the derby", "the season opener", "the club time trial",
            "the county championship", "the charity 10K", "the five-a-side tournament", "the end-of-season regatta",
            "the indoor athletics meet", "the practice match", "the qualifying round", "the home game",
            "the school sports day", "the relay final", "the pre-season camp", "the penalty shoot-out",
            "the rematch", "the tennis tournament", "the open water swim", "the weekend tournament",
            "the national trials", "the cross-country race", "the championship game", "the golf medal round",
            "the rugby sevens", "the cup tie", "the evening training session", "the track meet",
        ),
        activities=(
            "the passing in midfield", "our defensive shape", "the relay changeover", "penalty practice",
            "the hill session", "our serve", "the set-piece work", "the fitness work", "the game plan",
            "our footwork", "the line-out", "the sprint start", "the tackling", "our pacing", "the backhand",
            "the pressing", "the warm-up routine", "the free-throw shooting", "the fielding",
            "the stroke technique", "the floor routine", "the counter-attack", "the goalkeeping", "the scrum",
            "the putting", "the marking at corners", "the turn at each wall", "the bowling", "the blocking at the net",
            "the team's conditioning",
        ),
        places=(
            "at the leisure centre", "on the main pitch", "at the athletics track", "on court three",
            "at the boathouse", "in the sports hall", "at the velodrome", "on the training ground",
            "at the county ground", "at the swimming pool", "on the far pitch", "at the ice rink",
            "at the golf club", "at the climbing wall", "at the clubhouse",
        ),
        things=(
            "the indoor nets", "the rowing machines", "a set of cones", "the starting blocks", "the stopwatch",
            "the spare bibs", "the ball pump", "the tactics board", "the timing gates", "the kit bag",
            "the first-aid kit", "the match balls", "the scoreboard",
        ),
        times=("this season", "in the second half", "at the weekend", "in training this week", "in the last match"),
    ),
    "workplace": DomainVocabulary(
        groups=(
            "the finance team", "the client services group", "the design team", "the IT helpdesk",
            "the marketing team", "the sales team", "the leadership group", "the HR department",
            "the operations team", "the data team", "the legal team", "the support desk", "the night shift",
            "the procurement team", "the graduate intake", "the regional office", "the analytics group",
            "the product team", "the engineering team", "the warehouse crew", "the accounts team",
            "the compliance team", "the facilities team", "the payroll office",
        ),
        people=(
            "our project manager", "the new hire", "my manager", "our department head", "our team lead",
            "my line manager", "our director", "my colleague on the front desk", "our contractor",
            "the office manager", "the new analyst", "the account manager", "our chief executive",
            "the receptionist", "the senior developer", "the team's administrator",
        ),
        events=(
            "the quarterly review", "the morning stand-up", "the budget meeting", "the product launch",
            "the client presentation", "the annual appraisal", "the all-hands meeting", "the board meeting",
            "the system migration", "the office move", "the audit", "the team offsite", "the sprint review",
            "the training day", "the supplier negotiation", "the strategy workshop", "the year-end close",
            "the recruitment drive", "the software rollout", "the sales pitch", "the project kickoff",
            "the performance review", "the weekly one-to-one", "the town hall", "the website relaunch",
            "the planning session", "the handover meeting", "the contract renewal", "the stock take",
            "the call with head office", "the induction week",
        ),
        activities=(
            "the onboarding process", "the reporting workflow", "our project timeline", "the new expense system",
            "the handover process", "the sprint planning", "the ticket backlog", "the hiring process",
            "the approval chain", "the payroll migration", "the quarterly forecast", "the staff rota",
            "the documentation", "the release schedule", "the budget forecast", "the filing system",
            "the client onboarding", "the escalation procedure", "the weekly report", "the team's workload",
            "the communication between departments", "the invoicing", "our delivery pipeline", "the roadmap",
            "the meeting schedule", "the code review process", "the stock control", "the shift pattern",
        ),
        places=(
            "in the main conference room", "on the third floor", "at head office", "in meeting room B",
            "over video call", "in the staff kitchen", "at the regional office", "in the boardroom",
            "in the open-plan area", "at the client's site", "in the training room", "at the front desk",
            "in the warehouse office", "on the second floor",
        ),
        things=(
            "the shared drive", "the project tracker", "the expense form", "the office printer",
            "the booking system", "the staff handbook", "the timesheet template", "the team calendar",
            "the new laptops", "the ticketing tool", "the badge reader", "the intranet page", "the org chart",
        ),
        times=("this quarter", "this sprint", "at the end of the month", "during the busy period",
               "before the deadline"),
    ),
    "other": DomainVocabulary(
        groups=(
            "the bakery on our street", "the community choir", "the local library", "the new cafe by the station",
            "our book club", "the train company", "the hotel", "the village theatre group", "the farmers market",
            "my sister's band", "the school orchestra", "the hardware shop", "the cookery school",
            "the bus service", "the museum", "the garden centre", "our allotment group", "the dog-walking club",
            "the film society", "the photography club", "the pottery class", "the local council",
            "the restaurant on the corner", "the guesthouse", "the ferry operator", "the jazz trio",
            "the knitting circle", "the bookshop", "the radio station", "the youth orchestra",
        ),
        people=(
            "my neighbour", "the tour guide", "the head chef", "our landlord", "the conductor",
            "the new vicar", "my aunt", "the plumber", "the bus driver", "the librarian", "our host",
            "the florist", "the dentist", "the lead singer",
        ),
        events=(
            "the village fete", "the choir concert", "the cookery class", "the family barbecue",
            "the museum tour", "the book launch", "the school play", "the weekend trip to the coast",
            "the craft fair", "the gallery opening", "the street party", "the pub quiz", "the garden show",
            "the film screening", "the dinner party", "the wedding reception", "the open-mic night",
            "the guided walk", "the bake sale", "the flower show", "the holiday", "the train journey",
            "the house move", "the kitchen renovation", "the poetry reading", "the harvest supper",
            "the library talk", "the boat trip", "the neighbourhood litter pick", "the birthday party",
            "the jazz evening",
        ),
        activities=(
            "the new menu", "the bread", "the seating arrangement", "the room service", "the sound system",
            "the lighting", "the timetable", "the booking process", "the garden layout", "the set list",
            "the seasoning", "the check-in process", "the recipe", "the housekeeping",
            "the harmony in the second verse", "the guide's commentary", "the parking arrangement",
            "the delivery service", "the soup", "the window display", "the queue system", "the reading list",
            "the stage design", "the cake", "the rehearsal schedule", "the heating", "the playlist",
            "the choice of wine", "the signage",
        ),
        places=(
            "in the village hall", "at the library", "on the high street", "in the community centre",
            "at the town museum", "in the park", "at the station", "in the church hall", "at the market square",
            "on the ferry", "at the garden centre", "in the back room of the pub", "at the town hall",
        ),
        things=(
            "the sign-up sheet", "the parish newsletter", "the folding tables", "the ticket booth",
            "the printed programme", "the menu board", "the notice by the door", "the map", "the guest list",
            "the spare chairs", "the raffle tickets", "the urn",
        ),
        times=("this spring", "over the holidays", "this summer", "on our last visit", "at the weekend"),
    ),
}

#: Past-time phrases that fit any domain ("... was good {time}").
TIMES = (
    "this week", "last night", "yesterday", "this morning", "over the weekend", "last month", "earlier today",
    "this afternoon", "yesterday evening", "this time", "last week", "the other day", "this year",
    "on Tuesday", "on Saturday", "on Friday evening", "last Sunday",
)
#: Spans for the present perfect ("... has been good {span}"), which "yesterday" would not fit.
SPANS = (
    "lately", "recently", "for a few weeks now", "since the spring", "over the past month", "all year",
    "this year so far", "since the new year", "for a while now", "in recent weeks",
)


@dataclass(frozen=True)
class Tone:
    """Sentiment words of one strength and polarity, by grammatical slot.

    ``adj`` follows "was"/"felt"/"has been"; ``noun`` follows "was"; ``feeling`` follows "I felt"/
    "left me"; ``verb`` follows a subject (past tense); ``opener`` starts a sentence (with its own
    punctuation and trailing space); ``end`` closes one; ``caveat`` (weak only) follows a comma.
    """

    adj: tuple[str, ...]
    noun: tuple[str, ...]
    feeling: tuple[str, ...]
    verb: tuple[str, ...]
    opener: tuple[str, ...]
    end: tuple[str, ...] = (".",)
    caveat: tuple[str, ...] = ()


_WEAK_OPENERS = (
    "I suppose ", "Perhaps ", "It seems ", "Arguably, ", "If anything, ", "In a way, ", "I guess ",
    "On balance, ", "For what it is worth, ", "Possibly ", "It might just be me, but ", "",
)

TONES: dict[tuple[str, str], Tone] = {
    ("strong", "positive"): Tone(
        adj=(
            "absolutely brilliant", "simply outstanding", "truly magnificent", "utterly spectacular",
            "phenomenal from start to finish", "nothing short of extraordinary", "incredibly inspiring",
            "breathtaking", "flawless", "superb in every way", "sensational", "absolutely wonderful",
            "exceptional", "magnificent", "astonishingly good", "truly world-class", "utterly superb",
            "spectacularly good", "fantastic", "glorious", "perfect in every respect", "simply stunning",
            "incredible", "a dream",
        ),
        noun=(
            "an absolute triumph", "a stunning success", "a masterclass", "the highlight of the year",
            "a dream come true", "an unforgettable triumph", "a spectacular success", "a complete triumph",
            "a magnificent achievement", "a joy from beginning to end", "an extraordinary achievement",
            "a brilliant day for everyone involved", "the most brilliant thing I have seen in years", "pure brilliance",
        ),
        feeling=(
            "thrilled", "overjoyed", "ecstatic", "prouder than ever", "absolutely delighted", "over the moon",
            "elated", "bursting with pride", "utterly delighted", "immensely grateful", "euphoric",
            "completely inspired",
        ),
        verb=(
            "delivered a stunning performance", "produced a brilliant display", "smashed every target",
            "put on a magnificent show", "exceeded every expectation", "did a phenomenal job",
            "pulled off an incredible comeback", "set a brilliant example for everyone",
            "turned in a flawless performance", "showed extraordinary skill", "raised the bar spectacularly",
            "achieved something truly remarkable", "made it look effortless with a superb effort",
        ),
        opener=("Wow, ", "Without a doubt, ", "Honestly, ", "I have to say, ", "Make no mistake: ",
                "What a day! ", "Simply put, ", "Incredible: ", "", ""),
        end=("!", "!", "."),
    ),
    ("medium", "positive"): Tone(
        adj=(
            "good", "solid", "encouraging", "pleasing", "productive", "well organised", "enjoyable",
            "really good", "quite impressive", "nicely done", "pleasant", "rewarding", "better than expected",
            "helpful", "promising", "well executed", "positive", "satisfying", "good fun", "worthwhile",
            "effective", "clearly improved", "steady and reliable", "well judged",
        ),
        noun=(
            "a good result", "a solid step forward", "a pleasant surprise", "a welcome improvement",
            "a productive day", "an encouraging sign", "a good effort all round", "a step in the right direction",
            "a nice change", "a useful success", "a good day's work",
        ),
        feeling=(
            "pleased", "happy", "glad", "satisfied", "encouraged", "proud", "optimistic", "relieved",
            "content", "quite happy", "really glad", "positive",
        ),
        verb=(
            "put in a solid effort", "played well", "made good progress", "did a good job",
            "showed real improvement", "handled the pressure well", "worked well together",
            "delivered a good result", "looked sharp", "kept things well organised", "made some smart decisions",
            "improved noticeably", "responded well",
        ),
        opener=("Overall, ", "All in all, ", "On the whole, ", "I think ", "In general, ", "Happily, ", "", ""),
    ),
    ("weak", "positive"): Tone(
        adj=(
            "slightly better than before", "a little more settled", "marginally improved", "somewhat promising",
            "decent enough", "a touch more organised than last time", "reasonably fine", "not entirely disappointing",
            "a bit more promising", "mildly encouraging", "passable enough", "modestly better",
            "a shade more composed", "a small step up", "somewhat steadier", "a little brighter than usual",
            "more or less acceptable", "slightly less chaotic than usual", "more or less okay",
            "fairly pleasant", "a little more hopeful", "slightly more polished",
        ),
        noun=(
            "a small improvement", "a modest step forward", "perhaps a slight improvement",
            "a minor step in the right direction", "a reasonable enough start", "a faint sign of progress",
            "a modest success of sorts", "a slightly better showing", "a small but real gain",
        ),
        feeling=(
            "cautiously hopeful", "mildly encouraged", "faintly optimistic", "slightly reassured",
            "somewhat relieved", "a little more hopeful", "quietly satisfied", "vaguely pleased",
            "moderately content", "tentatively positive", "a bit more confident",
        ),
        verb=(
            "showed marginally sharper focus", "looked slightly more comfortable", "made a little progress",
            "seemed somewhat more organised", "improved a touch", "held up reasonably well",
            "did a more or less passable job", "looked a bit more confident", "managed a modest improvement",
            "seemed slightly more at ease", "got slightly better results",
        ),
        opener=_WEAK_OPENERS,
        caveat=(
            "though it is hard to say for sure", "though there is still a long way to go",
            "although the results were still mixed", "even if it still had rough edges",
            "though it is early days", "although the gains were small", "but it is too soon to tell",
            "though I would not read too much into it", "even if not everyone noticed",
        ),
    ),
    ("strong", "negative"): Tone(
        adj=(
            "utterly catastrophic", "appalling", "dreadful", "horrendous", "disgraceful", "absolutely shambolic",
            "truly awful", "abysmal", "humiliating", "atrocious", "painfully incompetent",
            "unbearable from start to finish", "utterly miserable", "shocking in every way", "beyond embarrassing",
            "infuriating", "disastrous", "woeful", "pathetic", "a complete nightmare", "absolutely terrible",
            "horrible", "an utter disgrace",
        ),
        noun=(
            "an absolute disaster", "a complete shambles", "a total fiasco", "a humiliating failure",
            "a catastrophe from start to finish", "the worst day of the year", "an utter embarrassment",
            "a nightmare", "a catastrophic waste of everyone's time", "an outright failure",
            "the worst thing I have seen in years", "a disaster of epic proportions",
        ),
        feeling=(
            "furious", "devastated", "appalled", "disgusted", "utterly miserable", "absolutely livid",
            "heartbroken", "horrified", "sickened", "outraged", "mortified", "beyond angry",
        ),
        verb=(
            "fell apart completely", "delivered a shambolic performance", "made a disastrous mess of everything",
            "threw away every chance", "failed in the most humiliating way", "collapsed under the slightest pressure",
            "let everyone down disgracefully", "managed to ruin the whole thing", "showed shocking incompetence",
            "produced a disgraceful display", "turned it into a total disaster",
        ),
        opener=("Honestly, ", "Frankly, ", "Unbelievable. ", "Make no mistake: ", "I cannot believe it: ",
                "What a mess. ", "Terrible news: ", "", ""),
        end=("!", "!", "."),
    ),
    ("medium", "negative"): Tone(
        adj=(
            "disappointing", "frustrating", "poorly organised", "unproductive", "sloppy", "below par",
            "quite poor", "messy", "badly planned", "tiresome", "not good enough", "careless", "really unhelpful",
            "worse than expected", "stressful", "confusing", "disorganised", "annoying", "dull", "unreliable",
            "a real letdown", "clearly worse",
        ),
        noun=(
            "a disappointing result", "a step backwards", "a real letdown", "a frustrating experience",
            "a waste of time", "a poor effort", "a bit of a mess", "an unwelcome surprise", "a setback",
            "a missed opportunity", "a bad day's work",
        ),
        feeling=(
            "disappointed", "frustrated", "annoyed", "unhappy", "let down", "fed up", "irritated", "worried",
            "dissatisfied", "discouraged", "unimpressed", "stressed",
        ),
        verb=(
            "played poorly", "made careless mistakes", "failed to deliver", "lost focus", "struggled badly",
            "let everyone down", "wasted the opportunity", "looked disorganised", "made a mess of things",
            "showed a poor attitude", "fell well short", "struggled to keep up", "kept making the same mistakes",
        ),
        opener=("Sadly, ", "Unfortunately, ", "Overall, ", "Honestly, ", "To be honest, ", "I have to admit ", "", ""),
    ),
    ("weak", "negative"): Tone(
        adj=(
            "slightly off", "a little flat", "not entirely convincing", "somewhat underwhelming",
            "marginally worse than before", "a touch disorganised", "subtly wrong somehow", "a bit uneven",
            "a little sluggish", "slightly awkward", "a little less focused than usual", "somewhat lacklustre",
            "a bit shaky", "not quite as sharp as before", "faintly disappointing", "a little strained",
            "slightly below standard", "mildly concerning", "a bit muddled", "slightly unconvincing",
            "somewhat rushed", "a little off the mark",
        ),
        noun=(
            "a slight step backwards", "perhaps a minor setback", "a bit of a missed opportunity",
            "a bit less than we hoped for", "a small disappointment", "a slightly uncomfortable experience",
            "something of a minor letdown", "a little less than we expected",
        ),
        feeling=(
            "slightly uneasy", "a little unsure", "mildly concerned", "somewhat underwhelmed",
            "vaguely uncomfortable", "a bit doubtful", "faintly disappointed", "not entirely convinced",
            "a little worried", "slightly deflated", "a touch uneasy",
        ),
        verb=(
            "seemed a little off the pace", "looked slightly less confident", "lost a bit of momentum",
            "seemed somewhat distracted", "struggled a little", "looked a touch unsure",
            "was not quite at their best", "made a few small mistakes", "seemed slightly out of step",
            "drifted a little", "seemed slightly less motivated",
        ),
        opener=_WEAK_OPENERS,
        caveat=(
            "though it is hard to put a finger on why", "although nobody said anything",
            "but maybe that is just me", "though it may pass", "though it is probably nothing",
            "although it is early to judge", "though I could be reading too much into it",
            "even if nobody else seemed to mind",
        ),
    ),
}

# Frames for every non-neutral strength. {event}, {subject}, {activity}, {time}, {span} come from the
# domain; {adj}, {noun}, {feeling}, {verb}, {opener}, {end} from the tone.
SENTIMENT_FRAMES = (
    "{opener}{event} {time} was {adj}{end}",
    "{opener}the way {subject} handled {event} was {adj}{end}",
    "I felt {feeling} about how {subject} handled {event}{end}",
    "{opener}{activity} felt {adj} {time}{end}",
    "{opener}{event} was {noun}{end}",
    "{opener}{subject} {verb} {time}{end}",
    "After {event}, I felt {feeling} about {activity}{end}",
    "{opener}{activity} has been {adj} {span}{end}",
    "Watching {subject} during {event} {time} left me {feeling}{end}",
    "{event} was {adj}, and {subject} {verb}{end}",
    "{opener}{subject} {verb} during {event}, and I felt {feeling}{end}",
    "Looking back on {event}, {activity} was {adj}{end}",
    "{event} {time} was {noun}: {subject} {verb}{end}",
    "Everyone I spoke to agreed that {event} was {adj}{end}",
    "My view is that {activity} {time} was {adj}{end}",
    "{opener}{subject} {verb} in {event}{end}",
    "When it came to {activity}, {subject} {verb}{end}",
)

STRONG_FRAMES = (
    "{event} {time}: {noun}{end}",
    "I was {feeling} when {subject} {verb} at {event}{end}",
    "{opener}{event} was {adj}, and I am {feeling}{end}",
)

WEAK_FRAMES = (
    "{opener}{event} was {adj}, {caveat}.",
    "{activity} seemed {adj} {time}, {caveat}.",
    "It is hard to say, but {subject} {verb} {time}.",
    "I might be wrong, but I felt {feeling} after {event}.",
    "{opener}{subject} {verb}, {caveat}.",
)

# Mixed-signal frames that only make sense one way round: a weak positive admits faults first,
# a weak negative concedes that things looked fine first.
POLARITY_FRAMES = {
    "positive": (
        "{event} had its ups and downs, but {activity} was {adj}.",
        "Not everything went to plan at {event}, but {subject} {verb}.",
    ),
    "negative": (
        "{event} looked fine on paper, but {activity} felt {adj}.",
        "Nothing went badly wrong at {event}, yet {subject} {verb}.",
    ),
}

# Neutral: factual statements. Only domain words and these sentiment-free slot lists may appear.
NEUTRAL_FRAMES = (
    "{event} is scheduled for {day} {clock}.",
    "{group} meets {place} every {day}.",
    "{event} will take place {place} {future}.",
    "A total of {count} people signed up for {event}.",
    "{activity} runs for {duration} {habit}.",
    "{subject} uses {thing} for {activity}.",
    "The schedule for {event} was sent out on {day}.",
    "{subject} moved {activity} to {day}.",
    "Details about {event} are listed {info}.",
    "{group} has {count} members at the moment.",
    "{event} starts {clock} and lasts {duration}.",
    "{thing} is kept {place}.",
    "{subject} will travel to {event} by {transport} {future}.",
    "The venue for {event} has been booked for {day}.",
    "{event} was moved {daypair}.",
    "Registration for {event} closes {future}.",
    "{subject} published the timetable for {event} on {day}.",
    "{event} usually lasts {duration}.",
    "Each session of {activity} lasts {duration}.",
    "{subject} recorded {count} entries for {event}.",
    "{subject} asked for {thing} to be left {place} before {event}.",
    "{activity} is discussed at {event} {habit}.",
    "{subject} checked {thing} on {day} {clock}.",
    "The next meeting about {activity} is {future} {place}.",
)

NEUTRAL_SLOTS: dict[str, tuple[str, ...]] = {
    "day": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    "clock": ("at 08:30", "at 09:00", "at 10:15", "at 11:45", "at noon", "at 13:30", "at 14:00", "at 15:20",
              "at 16:45", "at 18:00", "at 19:30", "in the morning", "in the afternoon", "in the evening"),
    "future": ("next week", "next month", "on Friday", "in March", "later this year", "in two weeks",
               "on the first Monday of June", "after the holidays", "in the autumn", "next Thursday"),
    "count": tuple(str(n) for n in range(8, 97, 4)),
    "duration": ("forty minutes", "an hour", "ninety minutes", "two hours", "half an hour", "three hours",
                 "about fifty minutes", "most of the day"),
    "habit": ("each Tuesday", "every morning", "twice a week", "on weekdays", "once a month", "every Friday",
              "each weekend", "every other week"),
    "info": ("on the noticeboard", "in the weekly email", "on the website", "in the newsletter",
             "on the shared calendar", "in the printed handout"),
    "transport": ("coach", "train", "minibus", "car", "bus"),
}

# --- Lexicons: used by the tests (and by anyone auditing the data) -----------------------------

#: Sentiment words of strong texts; every strong phrase contains one of its polarity.
STRONG_POSITIVE_WORDS = frozenset({
    "brilliant", "outstanding", "magnificent", "spectacular", "spectacularly", "phenomenal", "extraordinary",
    "inspiring", "inspired", "breathtaking", "flawless", "superb", "sensational", "wonderful", "exceptional",
    "astonishingly", "world-class", "fantastic", "glorious", "perfect", "stunning", "incredible", "dream",
    "triumph", "masterclass", "highlight", "unforgettable", "achievement", "joy", "prouder",
    "brilliance", "thrilled", "overjoyed", "ecstatic", "delighted", "moon", "elated", "pride",
    "grateful", "euphoric", "smashed", "exceeded", "comeback", "remarkable", "effortless",
})
STRONG_NEGATIVE_WORDS = frozenset({
    "catastrophic", "appalling", "dreadful", "horrendous", "disgraceful", "shambolic", "awful", "abysmal",
    "humiliating", "atrocious", "incompetent", "incompetence", "unbearable", "miserable", "shocking",
    "embarrassing", "infuriating", "disastrous", "woeful", "pathetic", "nightmare", "terrible", "horrible",
    "disgrace", "disgracefully", "disaster", "shambles", "fiasco", "failure", "catastrophe", "worst",
    "embarrassment", "sickened",
    "furious", "devastated", "appalled", "disgusted", "livid", "heartbroken", "horrified", "outraged",
    "mortified", "angry", "apart", "collapsed", "ruin", "threw",
})
#: Sentiment words of medium and weak texts (plain and mild evaluation).
MILD_POSITIVE_WORDS = frozenset({
    "good", "solid", "encouraging", "encouraged", "pleasing", "productive", "organised", "enjoyable",
    "impressive", "nicely", "pleasant", "rewarding", "better", "helpful", "promising", "executed", "positive",
    "satisfying", "satisfied", "fun", "worthwhile", "effective", "improved", "improvement", "reliable",
    "judged", "welcome", "nice", "useful", "pleased", "happy", "glad", "optimistic", "relieved", "content",
    "progress", "well", "sharp", "smart", "settled", "decent", "fine", "passable", "composed", "steadier",
    "brighter", "acceptable", "okay", "hopeful", "polished", "reassured", "confident", "comfortable",
    "ease", "gain", "showing", "step", "happily", "focus", "sharper", "reasonable", "reasonably", "success",
    "proud", "best",
})
MILD_NEGATIVE_WORDS = frozenset({
    "disappointing", "disappointed", "disappointment", "frustrating", "frustrated", "poorly", "unproductive",
    "sloppy", "par", "poor", "messy", "badly", "tiresome", "careless", "unhelpful", "worse", "stressful",
    "stressed", "confusing", "disorganised", "annoying", "annoyed", "dull", "unreliable",
    "backwards", "setback", "missed", "unwelcome", "unhappy", "fed", "irritated", "worried", "dissatisfied",
    "discouraged", "unimpressed", "mistakes", "letdown", "failed", "struggled", "wasted", "short", "off", "flat",
    "unconvincing", "underwhelming", "underwhelmed", "uneven", "sluggish", "awkward", "lacklustre", "shaky",
    "strained", "concerning", "concerned", "muddled", "rushed", "uncomfortable", "uneasy", "unsure",
    "doubtful", "deflated", "distracted", "drifted", "momentum", "chaotic", "unmotivated",
    "convincing", "convinced", "wrong", "less", "bad", "unfocused", "down", "below", "waste", "mess",
    "attitude",
})
POSITIVE_WORDS = STRONG_POSITIVE_WORDS | MILD_POSITIVE_WORDS
NEGATIVE_WORDS = STRONG_NEGATIVE_WORDS | MILD_NEGATIVE_WORDS
#: Every sentiment word the generator uses.
SENTIMENT_WORDS = POSITIVE_WORDS | NEGATIVE_WORDS

#: Downtoners and hedges (matched as whole words or phrases); every weak text carries one.
HEDGES = (
    "slightly", "a little", "somewhat", "marginally", "a touch", "a bit", "fairly", "reasonably", "mildly",
    "faintly", "modestly", "tentatively", "cautiously", "vaguely", "moderately", "not entirely", "not quite",
    "more or less", "enough", "small", "minor", "modest", "a shade", "perhaps", "i suppose", "i guess",
    "it seems", "arguably", "possibly", "if anything", "hard to say", "i might be wrong", "passable",
    "quietly", "faint", "slight", "subtly",
)
#: Intensifiers; neutral texts carry none.
INTENSIFIERS = (
    "absolutely", "utterly", "truly", "incredibly", "completely", "totally", "simply", "remarkably",
    "extremely", "astonishingly", "spectacularly", "immensely", "really", "beyond", "nothing short of",
)
