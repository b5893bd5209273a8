import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { gvariantString, gvariantStrings, parseGvariantStrings } from './gnome-app-folders.js';

describe('GVariant string arrays', () => {
  it('parse back what is written, whatever the strings hold', () => {
    fc.assert(
      fc.property(fc.array(fc.string()), (list) => {
        expect(parseGvariantStrings(gvariantStrings(list))).toEqual(list);
      }),
    );
    expect(gvariantStrings([])).toBe('@as []');
    expect(gvariantString("it's \\ here")).toBe("'it\\'s \\\\ here'");
    // gsettings prints a string holding ' in double quotes.
    expect(parseGvariantStrings(`['Utilities', "Mine's"]`)).toEqual(['Utilities', "Mine's"]);
  });
});
