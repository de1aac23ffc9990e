// The UnifiedQA datasets of the study: what each one is, which splits it ships, where they live.
// Sizes and sha256 are those of the files on the public UnifiedQA bucket
// (storage.googleapis.com/unifiedqa/data) as recorded in TensorFlow Datasets' checksums, so a
// download can be verified before anything is parsed. Line counts are TFDS's split sizes except for
// the train splits of squad1_1, squad2 and race_string, where TFDS's CSV reader (default quoting: a
// field that opens with `"` swallows the following lines) reports 87,514 / 130,149 / 87,863; there
// the source datasets' sizes (87,599 / 130,319 / 87,866) are used, which give the study's total of
// 462,516 instances. The same pitfall is why our parser gives quote characters no meaning.
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

/** How the answer relates to the input; it decides prompt layout and which metrics make sense. */
export type QaFormat = 'yes_no' | 'multiple_choice' | 'extractive' | 'abstractive';

/**
 * UnifiedQA split file names. `dev` is the public validation set; squad1_1, squad2, boolq and
 * mctest_corrected_the_separator ship no `test`, so the study evaluates those on `dev`.
 */
export type Split = 'train' | 'dev' | 'test';

export interface SplitFile {
  /** Lines in the TSV, i.e. instances (NarrativeQA: one line per reference answer). */
  lines: number;
  bytes: number;
  sha256: string;
}

export interface DatasetEntry {
  name: DatasetName;
  format: QaFormat;
  /** Whether inputs carry a passage after the question (and after the choices, if any). */
  hasContext: boolean;
  splits: Partial<Record<Split, SplitFile>>;
}

export const DATASET_NAMES = [
  'narrativeqa',
  'ai2_science_middle',
  'ai2_science_elementary',
  'arc_hard',
  'arc_easy',
  'mctest_corrected_the_separator',
  'squad1_1',
  'squad2',
  'boolq',
  'race_string',
  'openbookqa',
] as const;

export type DatasetName = (typeof DATASET_NAMES)[number];

const f = (lines: number, bytes: number, sha256: string): SplitFile => ({ lines, bytes, sha256 });

export const CATALOG: Readonly<Record<DatasetName, DatasetEntry>> = {
  narrativeqa: {
    name: 'narrativeqa',
    format: 'abstractive',
    hasContext: true,
    splits: {
      train: f(65494, 227359102, 'dd1220e0225947d57e25192a1e10ed0f34b1e123c3775588a8d6bec5b41e3005'),
      dev: f(6922, 23199538, 'c7f70a0bc92f1ef9fc660fd84d65420302d86a08e39de3c029e5e266b79680dd'),
      test: f(21114, 72697658, '991e2fb05bd18b5379b0936cd61345e222d5a1eed115ea07bea043fd51994da5'),
    },
  },
  ai2_science_middle: {
    name: 'ai2_science_middle',
    format: 'multiple_choice',
    hasContext: false,
    splits: {
      train: f(605, 180901, 'f961bf9c21422c9cfd3d6818a71d334975d5526712a9fb7fe36240ef5ed2190a'),
      dev: f(125, 41135, '789e3907f72304429074741120ecac59f7205719c8315a34f9e6f5cc7e8127c4'),
      test: f(679, 216658, '95b70c91c4c813c93bd05b1375e6b62e71a881402ea17c449394d1dbeab71c6d'),
    },
  },
  ai2_science_elementary: {
    name: 'ai2_science_elementary',
    format: 'multiple_choice',
    hasContext: false,
    splits: {
      train: f(623, 162929, '1617702fdb3647f247b5edb115255536a95ca4a7adda925308bb0555afbab84d'),
      dev: f(123, 38195, 'c876eead845dedfc8f29266179e5d070dac039fcc598c4c03850c57e5a57be37'),
      test: f(542, 152760, '5ea3789c1bae882de873e7ecc29a3ec6ae641eefa79f3b6a0774a2e8a0ffbfe0'),
    },
  },
  arc_hard: {
    name: 'arc_hard',
    format: 'multiple_choice',
    hasContext: false,
    splits: {
      train: f(1119, 329482, 'f97c07156bb835b032522b40772be82732e6b10177de2c8315b76f9513e0d860'),
      dev: f(299, 91537, 'c66f3d112df54f58f6aab8e09a7ced6f0352ac243d5d19d65f75cfc8a01f0774'),
      test: f(1172, 355205, '44813f33934bef4f410aef91a38b76c99e3352d04b1fceffaa1e87b8a54004e5'),
    },
  },
  arc_easy: {
    name: 'arc_easy',
    format: 'multiple_choice',
    hasContext: false,
    splits: {
      train: f(2251, 562953, '06086185ce88f433aa00b7b5189a3a7c52aaf0eaf8ac8c81e452b5b06f25d787'),
      dev: f(570, 142740, '8a448b1fbf14c874565360a10559f1c20fe8b3a57d33bfebd199411d7a6f1441'),
      test: f(2376, 597881, '2a8817f083ad75d35f29ba41081fa483e7df0ae50911c18e6cf728b534eae706'),
    },
  },
  mctest_corrected_the_separator: {
    name: 'mctest_corrected_the_separator',
    format: 'multiple_choice',
    hasContext: true,
    splits: {
      train: f(1480, 1854658, '25ff565aee2d6154b8586e946d4e7a855217a7a9cee0214ad1a01982471a6f5e'),
      dev: f(320, 396006, '9b103353c95452e2aced3d99f64047a01aa8e490af61c9f902f233378390e9aa'),
    },
  },
  squad1_1: {
    name: 'squad1_1',
    format: 'extractive',
    hasContext: true,
    splits: {
      train: f(87599, 75199697, '99a5fab55381dc073227cff78cdc3b1e0e5943db1d668f1e32a64369b8a54c17'),
      dev: f(10570, 9335841, '2d15415dd1e7b1351ae02e20e58136e7c005f337ae4e7d0df5415612938a1ba0'),
    },
  },
  squad2: {
    name: 'squad2',
    format: 'extractive',
    hasContext: true,
    splits: {
      train: f(130319, 111400932, '3e825bdc910ab38483f0abe28a24b12e84856121c79a98935e8d1887f51d0178'),
      dev: f(11873, 10817646, '89869f4d1a862ea13d063308963e214838c48758f4f1713e23a7af4506090fcb'),
    },
  },
  boolq: {
    name: 'boolq',
    format: 'yes_no',
    hasContext: true,
    splits: {
      train: f(9427, 6066053, '31a7f4f6dee667b38805fc2a5dd02c0af80b908a431dabcc429f629cf5569f04'),
      dev: f(3270, 2079245, '91c8c421fd1ccb764e41166a3adbb900aea879e5eefb772575b17336134f1260'),
    },
  },
  race_string: {
    name: 'race_string',
    format: 'multiple_choice',
    hasContext: true,
    splits: {
      train: f(87866, 158562920, '2d2913ad5dd9293a19f91159c7e536c786647932585762292a76c51a49acd4c9'),
      dev: f(4887, 8716361, '0a713a312941b5ffc2625f9949294678e6991a5976bf54cc261f9e47cce3aaaf'),
      test: f(4934, 8847852, '4312d5ff9d45c0b5a7e8d9348823da02dfc737e73678f3ef26c27c65d812371e'),
    },
  },
  openbookqa: {
    name: 'openbookqa',
    format: 'multiple_choice',
    hasContext: false,
    splits: {
      train: f(4957, 794568, 'c7a6d4aa0168445ce25009bbed6473ebea3595586c5b004376fb1b4d8edc8e10'),
      dev: f(500, 87511, '687999368da851f74598a705dffeb6955b8f6914c8e0b7b214d7c05e319b7ca9'),
      test: f(500, 82881, '331d1cd27150ab89d506ef94e1c70b240c7e870c8fd8205a99bfcb77cc10ffdb'),
    },
  },
};

/** Where the study's data lives; any mirror with the same `<dataset>/<split>.tsv` layout works. */
export const UNIFIEDQA_BASE_URL = 'https://storage.googleapis.com/unifiedqa/data';

/** Total instances (lines) of the 11 datasets across all their splits: 462,516. */
export const UNIFIEDQA_TOTAL_LINES = DATASET_NAMES.reduce(
  (sum, name) => sum + Object.values(CATALOG[name].splits).reduce((s, file) => s + file.lines, 0),
  0,
);

export function isDatasetName(value: string): value is DatasetName {
  return (DATASET_NAMES as readonly string[]).includes(value);
}

/** Throws a TypeError naming the dataset and the valid names, for config validation at the edge. */
export function getDataset(name: string): DatasetEntry {
  if (!isDatasetName(name)) {
    throw new TypeError(`unknown UnifiedQA dataset "${name}"; expected one of ${DATASET_NAMES.join(', ')}`);
  }
  return CATALOG[name];
}

/** The splits a dataset ships, in train → dev → test order. */
export function datasetSplits(name: DatasetName): Split[] {
  return (['train', 'dev', 'test'] as const).filter((s) => CATALOG[name].splits[s] !== undefined);
}

/**
 * `<baseUrl>/<dataset>/<split>.tsv` for any scheme (https://, http://, file://, s3://). Only
 * trailing slashes of the base are trimmed: the scheme's `//` and any bucket prefix stay intact.
 */
export function datasetUrl(baseUrl: string, dataset: string, split: string): string {
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(baseUrl)) {
    throw new TypeError(`dataset base URL "${baseUrl}" needs a scheme (https://, http://, file://, s3://)`);
  }
  return `${baseUrl.replace(/\/+$/, '')}/${encodeURIComponent(dataset)}/${encodeURIComponent(split)}.tsv`;
}

/**
 * The shipped sample "dataset source": small synthetic UnifiedQA-format files written by
 * `datasets/generate.ts`, one per format, each with a `train` and a held-out `test` split.
 */
export const SAMPLE_DATASETS = {
  boolq: ['train', 'test'],
  arc_easy: ['train', 'test'],
  squad1_1: ['train', 'test'],
  narrativeqa: ['train', 'test'],
} as const satisfies Partial<Record<DatasetName, readonly Split[]>>;

export type SampleDatasetName = keyof typeof SAMPLE_DATASETS;

// The shipped samples stay with the data in datasets/; only this description of them is library code.
export const SAMPLES_DIR = resolve(__dirname, '../../datasets/samples');

/** `file://…/datasets/samples`, usable as a `baseUrl` for `datasetUrl`. */
export function sampleBaseUrl(): string {
  return pathToFileURL(SAMPLES_DIR).href;
}
