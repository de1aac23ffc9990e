/**
 * Import first in a bench script: peftgrid's logger reads its level when its module loads, and
 * imports run before the script's own statements, so setting the variable in the script is too late.
 */
process.env.PEFTGRID_LOG_LEVEL ??= 'warn';
