import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseDesktopEntry, splitExec } from './desktop-entry.js';

describe('desktop entries', () => {
  it('reads the [Desktop Entry] group only, unlocalized keys first', () => {
    const e = parseDesktopEntry(
      '# comment\n[Desktop Entry]\nName=Text Editor\nName[fr]=Éditeur\nType=Application\nExec=gedit %U\nIcon=org.gnome.gedit\nCategories=Utility;TextEditor;\n\n[Desktop Action new-window]\nName=New Window\nExec=gedit --new-window\n',
    );
    expect(e).toEqual({
      type: 'Application',
      name: 'Text Editor',
      exec: 'gedit %U',
      icon: 'org.gnome.gedit',
      categories: ['Utility', 'TextEditor'],
      hidden: false,
    });
    expect(parseDesktopEntry('[Desktop Entry]\nType=Application\nExec=x\n')).toBeUndefined();
    expect(parseDesktopEntry('[Desktop Entry]\nName=x\nHidden=true\n')?.hidden).toBe(true);
  });

  it('splits Exec as the spec says: quotes, escapes inside them, field codes dropped', () => {
    expect(splitExec('"/opt/My App/run" --new %U')).toEqual(['/opt/My App/run', '--new']);
    expect(splitExec('sh -c "echo \\"hi\\" \\$HOME"')).toEqual(['sh', '-c', 'echo "hi" $HOME']);
    expect(splitExec('app --rate=100%% %f')).toEqual(['app', '--rate=100%']);
    expect(splitExec('  spaced   out  ')).toEqual(['spaced', 'out']);
  });

  it('property: an argv quoted as the spec says splits back to itself', () => {
    const quote = (a: string): string => `"${a.replace(/(["`$\\])/g, '\\$1')}"`;
    fc.assert(
      fc.property(
        fc.array(
          fc.string({ maxLength: 12 }).filter((s) => !s.includes('%')),
          { minLength: 1, maxLength: 6 },
        ),
        (argv) => {
          expect(splitExec(argv.map(quote).join(' '))).toEqual(argv);
        },
      ),
    );
  });

  it('property (fuzz): any text parses without throwing', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 400 }), (text) => {
        parseDesktopEntry(`[Desktop Entry]\n${text}`);
        splitExec(text);
      }),
    );
  });
});
