export declare function bundlePath(root: string, name: string): string;
export declare function inputsPath(root: string, name: string): string;
export declare function bundleFresh(root: string, name: string): boolean;
