// Word lists for the synthetic UnifiedQA-shaped data. Plain, common words on purpose: a 135M model
// already knows them, so fine-tuning only has to teach it to read the passage and answer briefly.

export const FIRST_NAMES = [
  'anna', 'ben', 'clara', 'david', 'elena', 'felix', 'grace', 'hugo', 'iris', 'jonas', 'kara', 'leo',
  'maya', 'nico', 'olga', 'paul', 'rosa', 'sam', 'tara', 'victor', 'wanda', 'yusuf', 'zoe', 'amir',
  'bianca', 'carlos', 'dina', 'emil', 'fatima', 'george', 'hana', 'ivan', 'julia', 'kenji', 'lena',
  'marco', 'nora', 'omar', 'priya', 'rafael',
] as const;

export const LAST_NAMES = [
  'novak', 'garcia', 'tanaka', 'silva', 'berg', 'kowalski', 'moreau', 'rossi', 'okafor', 'jensen',
  'haddad', 'petrov', 'santos', 'larsen', 'weber', 'costa', 'nakamura', 'fischer', 'dubois', 'lindqvist',
  'mendes', 'ito', 'keller', 'ramos', 'sato', 'brennan', 'adler', 'volkov', 'herrera', 'quinn',
] as const;

export const CITIES = [
  'oslo', 'lima', 'cairo', 'dublin', 'lisbon', 'prague', 'nairobi', 'quito', 'hanoi', 'vienna',
  'madrid', 'seoul', 'athens', 'bogota', 'helsinki', 'manila', 'warsaw', 'dakar', 'osaka', 'zurich',
  'porto', 'krakow', 'tunis', 'riga', 'geneva', 'lyon', 'milan', 'tallinn', 'accra', 'havana',
] as const;

export const JOBS = [
  'baker', 'nurse', 'pilot', 'farmer', 'teacher', 'painter', 'carpenter', 'doctor', 'chef', 'librarian',
  'gardener', 'fisher', 'tailor', 'mechanic', 'dentist', 'potter', 'sailor', 'jeweler', 'architect', 'singer',
] as const;

export const COLORS = ['red', 'blue', 'green', 'yellow', 'purple', 'orange', 'white', 'black', 'brown', 'pink', 'grey', 'silver'] as const;

export const OBJECTS = ['bicycle', 'kite', 'lamp', 'boat', 'guitar', 'umbrella', 'scarf', 'piano', 'clock', 'wagon', 'hat', 'teapot'] as const;

export const PETS = ['cat', 'dog', 'parrot', 'rabbit', 'horse', 'goat', 'turtle', 'owl', 'hamster', 'pony'] as const;

export const PET_NAMES = [
  'biscuit', 'pepper', 'luna', 'max', 'coco', 'shadow', 'mango', 'pixel', 'ziggy', 'olive', 'rocky',
  'maple', 'noodle', 'peanut', 'clover', 'ginger', 'pluto', 'hazel', 'tofu', 'button',
] as const;

export const PLACES = ['garden', 'attic', 'forest', 'market', 'river', 'cellar', 'library', 'harbor', 'barn', 'meadow'] as const;

export const RELATIONS = ['brother', 'sister', 'cousin', 'neighbor', 'friend', 'uncle', 'aunt', 'teacher'] as const;

export const MATERIALS = ['stone', 'oak wood', 'old rope', 'iron', 'bamboo', 'bricks', 'pine logs', 'clay'] as const;

export const DISASTERS = ['a storm', 'a flood', 'a fire', 'an earthquake', 'a landslide'] as const;

/**
 * Multiple-choice categories. Members are chosen so that none plausibly belongs to a second category
 * (no 'orange', no 'kiwi', birds apart from mammals): every generated question has one right option.
 */
export const CATEGORIES: Readonly<Record<string, readonly string[]>> = {
  color: ['red', 'blue', 'green', 'yellow', 'purple', 'orange', 'pink', 'brown'],
  fruit: ['apple', 'banana', 'cherry', 'grape', 'mango', 'pear', 'apricot', 'lemon', 'plum', 'melon'],
  mammal: ['lion', 'tiger', 'elephant', 'rabbit', 'horse', 'zebra', 'monkey', 'wolf', 'bear', 'giraffe'],
  bird: ['eagle', 'sparrow', 'parrot', 'penguin', 'owl', 'pigeon', 'swan', 'crow'],
  vehicle: ['car', 'bus', 'truck', 'bicycle', 'train', 'motorcycle', 'tractor', 'van'],
  'musical instrument': ['piano', 'violin', 'guitar', 'drum', 'flute', 'trumpet', 'harp', 'cello'],
  'body part': ['hand', 'knee', 'elbow', 'shoulder', 'ankle', 'finger', 'nose', 'ear'],
  'day of the week': ['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'],
  month: ['january', 'march', 'april', 'june', 'july', 'august', 'october', 'december'],
  metal: ['iron', 'copper', 'silver', 'gold', 'zinc', 'tin', 'aluminum', 'nickel'],
  planet: ['mercury', 'venus', 'mars', 'jupiter', 'saturn', 'neptune', 'uranus'],
  'piece of clothing': ['shirt', 'jacket', 'sock', 'scarf', 'glove', 'sweater', 'skirt', 'coat'],
  tool: ['hammer', 'saw', 'wrench', 'screwdriver', 'shovel', 'drill', 'chisel', 'rake'],
  'kitchen item': ['spoon', 'fork', 'plate', 'kettle', 'bowl', 'pan', 'ladle', 'whisk'],
};

// Filler vocabulary: padding sentences that make synthetic passages as long as real ones at scale.
export const FILLER_SUBJECTS = ['the old mill', 'a quiet street', 'the morning train', 'a small bakery', 'the village square', 'a wooden bridge', 'the town hall', 'a narrow path'] as const;
export const FILLER_VERBS = ['stood', 'was built', 'was painted', 'was repaired', 'was busy', 'was empty', 'was crowded', 'was closed'] as const;
export const FILLER_TAILS = ['for many years', 'in the spring', 'after the long winter', 'on most sundays', 'before the festival', 'during the rainy season', 'at the end of the summer', 'once every decade'] as const;
