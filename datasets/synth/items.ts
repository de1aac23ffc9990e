// Templated synthetic QA items, one generator per UnifiedQA format. Every answer is derivable from
// the input alone — a span of the passage, the one option of the asked category, a yes/no that the
// passage decides — and is a few words long, so a small model can learn to answer briefly.
import type { Rng } from '../../src/common/rng';
import type { Fields } from '../../src/data/unifiedqa';
import {
  CATEGORIES,
  CITIES,
  COLORS,
  DISASTERS,
  FILLER_SUBJECTS,
  FILLER_TAILS,
  FILLER_VERBS,
  FIRST_NAMES,
  JOBS,
  LAST_NAMES,
  MATERIALS,
  OBJECTS,
  PET_NAMES,
  PETS,
  PLACES,
  RELATIONS,
} from './words';

export interface SynthItem {
  fields: Fields;
  /** Reference answers; more than one only for abstractive items (one TSV line each). */
  answers: string[];
}

interface Person {
  first: string;
  full: string;
  city: string;
  year: number;
  job: string;
  workCity: string;
  color: string;
  object: string;
  pet: string;
  petName: string;
}

/** `a baker`, `an orange kite`: the article for a phrase. */
export function withArticle(phrase: string): string {
  return `${/^[aeiou]/.test(phrase) ? 'an' : 'a'} ${phrase}`;
}

function otherThan<T>(rng: Rng, items: readonly T[], ...not: T[]): T {
  const pool = items.filter((x) => !not.includes(x));
  return rng.pick(pool);
}

function person(rng: Rng, avoid?: Person): Person {
  const first = avoid ? otherThan(rng, FIRST_NAMES, avoid.first) : rng.pick(FIRST_NAMES);
  const city = avoid ? otherThan(rng, CITIES, avoid.city, avoid.workCity) : rng.pick(CITIES);
  return {
    first,
    full: `${first} ${rng.pick(LAST_NAMES)}`,
    city,
    year: 1940 + rng.int(66),
    job: avoid ? otherThan(rng, JOBS, avoid.job) : rng.pick(JOBS),
    workCity: otherThan(rng, CITIES, city),
    color: rng.pick(COLORS),
    object: rng.pick(OBJECTS),
    pet: rng.pick(PETS),
    petName: rng.pick(PET_NAMES),
  };
}

function profile(rng: Rng, p: Person, other: Person): string {
  return rng
    .shuffle([
      `${p.full} was born in ${p.city} in ${p.year}.`,
      `${p.first} works as ${withArticle(p.job)} in ${p.workCity}.`,
      `${p.first} owns ${withArticle(`${p.color} ${p.object}`)}.`,
      `${p.first} has a pet ${p.pet} called ${p.petName}.`,
      `${other.full} was born in ${other.city} and works as ${withArticle(other.job)}.`,
    ])
    .join(' ');
}

/** squad-style: the answer is a span of the passage. */
export function extractiveItem(rng: Rng): SynthItem {
  const p = person(rng);
  const context = profile(rng, p, person(rng, p));
  const [question, answer] = rng.pick<[string, string]>([
    [`where was ${p.full} born?`, p.city],
    [`in which year was ${p.full} born?`, String(p.year)],
    [`what is ${p.full}'s job?`, p.job],
    [`in which city does ${p.full} work?`, p.workCity],
    [`what color is ${p.first}'s ${p.object}?`, p.color],
    [`what is the name of ${p.first}'s ${p.pet}?`, p.petName],
  ]);
  return { fields: { question, context }, answers: [answer] };
}

/** boolq-style: the passage states a fact; the question asks whether a (possibly wrong) version holds. */
export function yesNoItem(rng: Rng): SynthItem {
  const p = person(rng);
  const other = person(rng, p);
  const context = profile(rng, p, other);
  const yes = rng.next() < 0.5;
  const [question] = rng.pick<[string]>([
    [`was ${p.full} born in ${yes ? p.city : other.city}?`],
    [`does ${p.full} work as ${withArticle(yes ? p.job : other.job)}?`],
    [`does ${p.first} own ${withArticle(`${yes ? p.color : otherThan(rng, COLORS, p.color)} ${p.object}`)}?`],
    [`is ${p.first}'s pet ${withArticle(yes ? p.pet : otherThan(rng, PETS, p.pet))}?`],
    [`was ${p.full} born in ${yes ? p.year : p.year + 1 + rng.int(9)}?`],
  ]);
  return { fields: { question, context }, answers: [yes ? 'yes' : 'no'] };
}

/** arc-style: one option belongs to the asked category, the others to three different ones. */
export function multipleChoiceItem(rng: Rng, nChoices = 4): SynthItem {
  const names = Object.keys(CATEGORIES);
  const [target, ...others] = rng.sample(names, nChoices) as [string, ...string[]];
  const answer = rng.pick(CATEGORIES[target]!);
  const choices = rng.shuffle([answer, ...others.map((c) => rng.pick(CATEGORIES[c]!))]);
  const question = rng.pick([
    `which of these is ${withArticle(target)}?`,
    `which one of the following is ${withArticle(target)}?`,
    `which of the following is an example of ${withArticle(target)}?`,
  ]);
  return { fields: { question, choices }, answers: [answer] };
}

/** race/mctest-style: a passage, a question about it, and options of the same kind as the answer. */
export function readingChoiceItem(rng: Rng): SynthItem {
  const p = person(rng);
  const context = profile(rng, p, person(rng, p));
  const [question, answer, pool] = rng.pick<[string, string, readonly string[]]>([
    [`where was ${p.full} born?`, p.city, CITIES],
    [`what is ${p.full}'s job?`, p.job, JOBS],
    [`what color is ${p.first}'s ${p.object}?`, p.color, COLORS],
    [`what kind of pet does ${p.first} have?`, p.pet, PETS],
  ]);
  const choices = rng.shuffle([
    answer,
    ...rng.sample(
      pool.filter((x) => x !== answer),
      3,
    ),
  ]);
  return { fields: { question, choices, context }, answers: [answer] };
}

/** narrativeqa-style: a short story and a question with two differently worded reference answers. */
export function abstractiveItems(rng: Rng, questions: number): SynthItem[] {
  const p = person(rng);
  const friend = otherThan(rng, FIRST_NAMES, p.first);
  const relation = rng.pick(RELATIONS);
  const place = rng.pick(PLACES);
  const disaster = rng.pick(DISASTERS);
  const material = rng.pick(MATERIALS);
  const newJob = otherThan(rng, JOBS, p.job);
  const context = [
    `${p.full} is ${withArticle(p.job)} who lives in a small village near ${p.city}.`,
    `one day, ${p.first} finds ${withArticle(`${p.color} ${p.object}`)} in the ${place}.`,
    `${p.first} gives the ${p.object} to ${friend}, who is ${p.first}'s ${relation}.`,
    `later, ${disaster} destroys the old bridge, so ${p.first} and ${friend} build a new bridge from ${material}.`,
    `at the end of the story, ${p.first} moves to ${p.workCity} to become ${withArticle(newJob)}.`,
  ].join(' ');
  const pool: [string, string[]][] = [
    [`what does ${p.first} find in the ${place}?`, [withArticle(`${p.color} ${p.object}`), `${p.color} ${p.object}`]],
    [`who does ${p.first} give the ${p.object} to?`, [friend, `${p.first}'s ${relation} ${friend}`]],
    ['what destroys the old bridge?', [disaster, disaster.replace(/^an? /, '')]],
    ['what is the new bridge built from?', [material, `it is built from ${material}`]],
    [`where does ${p.first} move at the end of the story?`, [p.workCity, `to ${p.workCity}`]],
    [`what does ${p.first} want to become in ${p.workCity}?`, [withArticle(newJob), newJob]],
    [`what is ${p.first}'s job at the start of the story?`, [withArticle(p.job), p.job]],
  ];
  return rng.sample(pool, questions).map(([question, answers]) => ({ fields: { question, context }, answers }));
}

/** Neutral sentences that lengthen a passage to real-data size without touching the answer. */
export function fillerSentence(rng: Rng): string {
  return `${rng.pick(FILLER_SUBJECTS)} ${rng.pick(FILLER_VERBS)} ${rng.pick(FILLER_TAILS)}.`;
}
